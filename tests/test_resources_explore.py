"""Design-space exploration helpers: the Pareto front and the bench's error measure."""
import pytest

from tools.bench import relative_errors
from tools.explore import pareto

pytestmark = pytest.mark.unit


def test_pareto_keeps_only_undominated_points():
    points = [{"lanes": p, "lut": lut, "cycles": cyc} for p, lut, cyc in
              [(1, 1000, 90000), (2, 1500, 50000), (4, 2600, 52000), (8, 4000, 20000), (16, 7000, 20000),
               (32, 12000, 9000)]]
    front = pareto(points)
    # P=4 costs more LUTs than P=2 and is slower; P=16 costs more than P=8 for the same cycles.
    assert [p["lanes"] for p in front] == [1, 2, 8, 32]


def test_relative_errors_are_signed_fractions_of_synthesis():
    err = relative_errors({"lut": 1250, "ff": 900, "bram": 0}, {"lut": 1000, "ff": 1000, "bram": 0})
    assert err == {"lut": 0.25, "ff": -0.1, "bram": 0.0}
