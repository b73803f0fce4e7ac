"""`flow.py train-quant` end to end on a small digits model: the artifacts, determinism (byte-identical model
file), and --resume after an interruption giving exactly the uninterrupted result."""
import json
import os

import numpy as np

import flow
from golden.intmodel import load, load_testset
from quant import train as train_mod

ARGS = ["--epochs", "2", "--finetune-epochs", "1", "--set", "embed_dim=32", "--set", "heads=2", "--set", "warmup_epochs=0"]


def test_train_quant_artifacts_determinism_and_resume(tmp_path, monkeypatch, capsys):
    first, second = tmp_path / "a", tmp_path / "b"
    assert flow.main(["train-quant", *ARGS, "--out", str(first)]) == 0
    names = sorted(n for n in os.listdir(first) if not n.startswith("."))
    assert names == ["checkpoint.pt", "intmodel.zip", "metrics.json", "model.qonnx.onnx", "testset.npz"]

    metrics = json.loads((first / "metrics.json").read_text())
    model = load(str(first / "intmodel.zip"))
    images, labels = load_testset(str(first / "testset.npz"))
    assert images.shape == (360, 1, 8, 8) and images.max() == 16 and len(labels) == 360
    assert model.config == metrics["config"] and model.C == 32 and model.heads == 2
    assert metrics["golden_equals_torch"] is True and metrics["first_mismatch"] is None
    assert metrics["int_test_accuracy"] == metrics["folded_float_test_accuracy"]
    assert metrics["int_test_accuracy"] > 0.3   # two epochs already learn something (chance is 0.1)
    assert {"tok0.spikes", "tok1.pooled", "blk0.attn_spikes", "blk0.fc1.spikes"} <= set(metrics["per_layer_firing_rate"])
    assert metrics["params"] > 0 and metrics["weight_bits"] == 8 and metrics["train_seconds"] > 0

    # Interrupt the second run right after its first checkpoint, then resume it.
    real_save = train_mod.save_checkpoint
    calls = []

    def save_then_interrupt(path, state):
        real_save(path, state)
        calls.append(state["epoch"])
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "save_checkpoint", save_then_interrupt)
    assert flow.main(["train-quant", *ARGS, "--out", str(second)]) == 130
    assert calls == [1] and not (second / "intmodel.zip").exists()
    assert "interrupted" in capsys.readouterr().err
    monkeypatch.setattr(train_mod, "save_checkpoint", real_save)
    assert flow.main(["train-quant", *ARGS, "--out", str(second), "--resume"]) == 0
    assert "resuming from" in capsys.readouterr().err

    assert (second / "intmodel.zip").read_bytes() == (first / "intmodel.zip").read_bytes()
    assert (second / "testset.npz").read_bytes() == (first / "testset.npz").read_bytes()
    assert (second / "model.qonnx.onnx").read_bytes() == (first / "model.qonnx.onnx").read_bytes()
    m2 = json.loads((second / "metrics.json").read_text())
    assert m2["history"] == metrics["history"]
    for key in ("float_test_accuracy", "int_test_accuracy", "per_layer_firing_rate"):
        assert m2[key] == metrics[key]
    assert np.isfinite(m2["train_seconds"])
