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


def test_explore_generates_every_point_in_process_and_leaves_the_default_core_alone(tmp_path, capsys):
    """Lanes 4 and 8 are generated into explore/P<lanes>/ (cycles from the cycle model, resources from the resource
    model); 3 (not a power of two) is skipped with gen-rtl's sentence; build/<preset>/rtl/ is not touched."""
    import json

    import numpy as np

    import flow
    from golden.intmodel import make_config, random_intmodel, save, save_testset
    d = tmp_path / "p"
    save(random_intmodel(make_config(tokenizer=[{"out": 8, "pool": False}, {"out": 16, "pool": False}],
                                     embed_dim=16, heads=2, mlp_hidden=32), seed=4), str(d / "intmodel.zip"))
    rng = np.random.default_rng(1)
    save_testset(str(d / "testset.npz"), rng.integers(0, 32, size=(2, 1, 8, 8)), rng.integers(0, 10, size=2))
    (d / "rtl").mkdir()
    (d / "rtl" / "core.v").write_text("// the user's own core\n")
    assert flow.main(["explore", "--build", str(tmp_path), "--preset", "p", "--lanes", "3", "4", "8",
                      "--images", "2", "--synth", "0"]) == 0
    out = capsys.readouterr().out
    assert "P=3: skipped: --lanes 3 is not a power of two" in out
    result = json.loads((d / "explore" / "explore.json").read_text())
    assert [p["lanes"] for p in result["points"]] == [4, 8]
    assert all(p["cycles"] > 0 and p["lut"] > 0 for p in result["points"])
    assert (d / "explore" / "P8" / "core.v").exists() and (d / "explore" / "P8" / "manifest.json").exists()
    assert (d / "rtl" / "core.v").read_text() == "// the user's own core\n"
    assert sorted(p.name for p in (d / "rtl").iterdir()) == ["core.v"]
