"""Artifacts that cannot be mixed up (issue 13): every artifact records the model (and core) it was made from, and
the report sets aside, and names with the command that refreshes it, whatever belongs to another model or core."""
import json
import os

import numpy as np
import pytest

import flow
from golden import intmodel as im
from rtl.gen import generate

pytestmark = pytest.mark.unit

TINY = dict(T=2, input_bits=3, in_channels=1, image_size=[4, 4],
            tokenizer=[{"out": 4, "pool": False}, {"out": 8, "pool": True}], embed_dim=8, heads=2, blocks=1,
            mlp_hidden=8, num_classes=3, weight_bits=4)


def fake_sim(d, model, manifest, images=5):
    """What `flow.py sim` writes (the report reads only these fields), for a core generated here."""
    (d / "sim").mkdir(parents=True, exist_ok=True)
    (d / "sim" / "results.json").write_text(json.dumps({
        "images": images, "testset_images": images, "partial": False, "mismatches": 0, "accuracy": 0.8,
        "cycles_mean": 1000.0, "cycles_max": 1100, "lanes": manifest["parameters"]["lanes"],
        "model_sha256": model.sha256, "verilog_sha256": manifest["verilog_sha256"], "per_image": []}))


@pytest.fixture
def preset(tmp_path):
    d = tmp_path / "p"
    model = im.random_intmodel(im.make_config(**TINY), seed=4)
    im.save(model, str(d / "intmodel.zip"))
    rng = np.random.default_rng(0)
    im.save_testset(str(d / "testset.npz"), rng.integers(0, 8, size=(5, 1, 4, 4)), rng.integers(0, 3, size=5))
    (d / "metrics.json").write_text(json.dumps({"intmodel_sha256": model.sha256, "float_test_accuracy": 0.975,
                                                "int_test_accuracy": 0.9722}))
    manifest = generate(model, 4, str(d / "rtl"))
    fake_sim(d, model, manifest)
    return tmp_path, d, model


def report(build, capsys):
    rc = flow.main(["report", "--build", str(build), "--preset", "p", "--images", "3"])
    err = capsys.readouterr().err
    assert rc == 0, err
    d = build / "p" / "report"
    return (d / "index.html").read_text(), json.loads((d / "summary.json").read_text())


def test_consistent_artifacts_are_all_used(preset, capsys):
    build, d, model = preset
    text, summary = report(build, capsys)
    assert summary["stale"] == [] and "Every artifact shown was made from this model and core" in text
    assert "97.22 %" in text and "core (Verilator simulation)" in text and summary["core_test_accuracy"] == 0.8


def test_gen_rtl_with_other_lanes_after_a_simulation(preset, capsys):
    """gen-rtl --lanes 1 after a 4-lane simulation: the simulation no longer describes the core."""
    build, d, model = preset
    assert flow.main(["gen-rtl", "--model", str(d / "intmodel.zip"), "--lanes", "1", "--out", str(d / "rtl")]) == 0
    capsys.readouterr()
    text, summary = report(build, capsys)
    stale = {s["artifact"]: s for s in summary["stale"]}
    sim = next(v for k, v in stale.items() if k.endswith("sim/results.json"))
    assert "made from core" in sim["why"] and sim["refresh"] == "python flow.py sim --preset p"
    assert "cycle model vs RTL counter" not in text and "mismatches = 0" not in text
    assert "with 1 lanes" in text                      # the cycles shown are the 1-lane core's own
    assert summary["core_test_accuracy"] is None


def test_another_model_swapped_in(preset, capsys):
    build, d, model = preset
    other = im.random_intmodel(im.make_config(**TINY), seed=99)
    im.save(other, str(d / "intmodel.zip"))
    text, summary = report(build, capsys)
    stale = {os.path.basename(s["artifact"]) for s in summary["stale"]}
    assert {"metrics.json", "manifest.json", "results.json"} <= stale
    assert summary["model_sha256"] == other.sha256 and summary["int_test_accuracy"] is None
    assert "97.22 %" not in text and "mismatches = 0" not in text
    assert f"not the current model {other.sha256[:12]}" in text
    assert "python flow.py train-quant --preset p" in text and "python flow.py gen-rtl --preset p" in text


def test_a_model_of_another_shape_does_not_crash_the_report(preset, capsys):
    """heads 2 -> 1 changes the head dimension: the old 4-lane manifest must not reach the cycle model."""
    build, d, model = preset
    other = im.random_intmodel(im.make_config(**{**TINY, "heads": 1, "embed_dim": 8}), seed=5)
    im.save(other, str(d / "intmodel.zip"))
    text, summary = report(build, capsys)
    assert summary["cycles_mean"] is None and any(s["artifact"].endswith("rtl/manifest.json") for s in summary["stale"])


def test_synthesis_of_another_core_is_not_shown(preset, capsys):
    build, d, model = preset
    synth = d / "synth" / "ecp5"
    synth.mkdir(parents=True)
    (synth / "report.json").write_text(json.dumps({
        "status": "ok", "device": "LFE5U-85F-6CABGA381", "lut": 4321, "ff": 10, "bram": 1, "dsp": 0,
        "fmax_mhz": 99.0, "fmax_per_seed": [99.0], "verilog_sha256": "0" * 64, "model_sha256": model.sha256}))
    text, summary = report(build, capsys)
    assert "4,321" not in text and "99.0 MHz" not in text and summary["synth"] == {}
    assert any(s["artifact"].endswith("synth/ecp5/report.json") and "made from core 000000000000" in s["why"]
               for s in summary["stale"])


def test_partial_simulation_is_not_the_core_accuracy(preset, capsys):
    build, d, model = preset
    manifest = json.loads((d / "rtl" / "manifest.json").read_text())
    fake_sim(d, model, manifest, images=2)
    text, summary = report(build, capsys)
    assert summary["core_test_accuracy"] is None and "core (Verilator simulation)" not in text
