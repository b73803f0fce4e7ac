"""Test tiers: every test must carry one of the markers declared in pytest.ini (unit, sim, synth, train), so that
`make test-fast` (-m unit) is a deliberate choice per test and not whatever happens to be unmarked."""
import pytest

TIERS = ("unit", "sim", "synth", "train")


def pytest_collection_modifyitems(config, items):
    unmarked = [item.nodeid for item in items if not any(item.get_closest_marker(t) for t in TIERS)]
    if unmarked:
        raise pytest.UsageError(f"{len(unmarked)} test(s) without a tier marker ({', '.join(TIERS)}); "
                         f"add `pytestmark = pytest.mark.unit` or a decorator. First: {unmarked[0]}")
