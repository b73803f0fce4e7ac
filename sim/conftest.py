import os

import pytest

from golden import intmodel as im


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true", default=False,
                     help="thorough runs: the whole digits test set through the core (make sim FULL=1)")


@pytest.fixture
def full(request):
    return request.config.getoption("--full")


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """The shipped default model (models/digits/, hash-checked) with its test set, installed in a temporary build
    folder: the tests neither retrain it nor touch the user's build/."""
    from quant import zoo
    build = str(tmp_path_factory.mktemp("zoo"))
    assert zoo.provide("digits", build)
    return im.load(os.path.join(build, "digits", "intmodel.zip")), os.path.join(build, "digits")
