"""`flow.py seeds`: the accuracy over training seeds (mean ± sample std), resumable; the training itself is the
train tier's (tests/test_quant_train.py), so finished runs are laid out here by hand."""
import json
import statistics

import pytest

import flow
from quant import seeds

pytestmark = pytest.mark.unit


def test_finished_seeds_are_summarised_without_training_again(tmp_path, capsys):
    accs = {0: (0.97, 0.975, 0.9722), 1: (0.95, 0.96, 0.9611), 2: (0.98, 0.98, 0.9833)}
    for seed, (f, fo, i) in accs.items():
        d = tmp_path / "digits" / "seeds" / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({
            "train_config": {"seed": seed}, "intmodel_sha256": f"{seed:064x}", "float_test_accuracy": f,
            "folded_float_test_accuracy": fo, "int_test_accuracy": i, "golden_equals_torch": True}))
    out = tmp_path / "seeds.json"
    assert flow.main(["seeds", "--build", str(tmp_path), "--seeds", "0", "1", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "training seed" not in text                     # every run was found finished
    result = json.loads(out.read_text())
    ints = [accs[s][2] for s in (0, 1, 2)]
    s = result["summary"]["int_test_accuracy"]
    assert s["n"] == 3 and s["mean"] == pytest.approx(statistics.fmean(ints))
    assert s["std"] == pytest.approx(statistics.stdev(ints))
    assert f"integer model: {100 * s['mean']:.2f} ± {100 * s['std']:.2f} % over 3 seeds" in text
    assert result["environment"]["cpu_capability"] and result["runs"][0]["seed"] == 0


def test_one_seed_is_not_a_sweep(tmp_path, capsys):
    assert flow.main(["seeds", "--build", str(tmp_path), "--seeds", "4", "4"]) == 2
    err = capsys.readouterr().err
    assert "at least two different seeds" in err and err.count("\n") == 1
    assert not (tmp_path / "digits").exists()
