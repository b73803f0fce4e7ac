import pytest


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true", default=False,
                     help="thorough runs: the whole digits test set through the core (make sim FULL=1)")


@pytest.fixture
def full(request):
    return request.config.getoption("--full")
