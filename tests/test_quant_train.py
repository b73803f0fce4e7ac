"""`flow.py train-quant` end to end on a small digits model: the artifacts, determinism (byte-identical model
file), and --resume after an interruption giving exactly the uninterrupted result."""
import json
import os

import numpy as np
import pytest

import flow
from golden.intmodel import load, load_testset
from quant import train as train_mod

pytestmark = pytest.mark.train

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
    assert flow.main(["train-quant", *ARGS, "--out", str(second)]) == 0
    assert "resuming from" in capsys.readouterr().err

    assert (second / "intmodel.zip").read_bytes() == (first / "intmodel.zip").read_bytes()
    assert (second / "testset.npz").read_bytes() == (first / "testset.npz").read_bytes()
    assert (second / "model.qonnx.onnx").read_bytes() == (first / "model.qonnx.onnx").read_bytes()
    m2 = json.loads((second / "metrics.json").read_text())
    assert m2["history"] == metrics["history"]
    for key in ("float_test_accuracy", "int_test_accuracy", "per_layer_firing_rate"):
        assert m2[key] == metrics[key]
    assert np.isfinite(m2["train_seconds"])


def test_sigkill_then_plain_rerun_resumes_to_the_same_model(tmp_path):
    """A run killed with SIGKILL (no handler runs) is continued by rerunning the same command, and the result is
    byte-identical to an uninterrupted run; a finished run rerun is not retrained."""
    import signal
    import subprocess
    import sys
    import time

    import torch

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = ["--epochs", "6", "--finetune-epochs", "1", "--set", "embed_dim=16", "--set", "heads=2",
            "--set", "warmup_epochs=0", "--no-qonnx"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def cmd(out):
        return [sys.executable, os.path.join(root, "flow.py"), "train-quant", *args, "--out", str(out)]

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(cmd(whole), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(cmd(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = killed / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.exists() and torch.load(ckpt, weights_only=False)["epoch"] >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed; give it more epochs"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "intmodel.zip").exists()
    rerun = subprocess.run(cmd(killed), env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming from" in rerun.stderr and "phase qat" in rerun.stderr
    assert (killed / "intmodel.zip").read_bytes() == (whole / "intmodel.zip").read_bytes()
    again = subprocess.run(cmd(killed), env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "phase finetune, 1 epoch(s) done" in again.stderr
    assert "QAT       epoch" not in again.stderr


def test_mid_epoch_checkpoint_resumes_exactly(tmp_path, monkeypatch, capsys):
    """Long epochs are checkpointed within the epoch; resuming from such a checkpoint gives the uninterrupted
    result (same shuffle, same augmentation draws, same running statistics)."""
    args = ["--epochs", "1", "--finetune-epochs", "1", "--set", "embed_dim=16", "--set", "heads=2",
            "--set", "warmup_epochs=0", "--set", "batch_size=128", "--set", "flip_augment=true",
            "--set", "val_size=200", "--no-qonnx"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert flow.main(["train-quant", *args, "--out", str(whole)]) == 0
    monkeypatch.setattr(train_mod, "SAVE_EVERY_S", 0.0)   # a checkpoint after every step
    real_save = train_mod.save_checkpoint
    partial_steps = []

    def save_then_interrupt(path, state):
        real_save(path, state)
        if state.get("partial") and state["partial"]["step"] == 4:
            partial_steps.append(4)
            raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "save_checkpoint", save_then_interrupt)
    assert flow.main(["train-quant", *args, "--out", str(cut)]) == 130
    assert partial_steps == [4]
    monkeypatch.setattr(train_mod, "save_checkpoint", real_save)
    capsys.readouterr()
    assert flow.main(["train-quant", *args, "--out", str(cut)]) == 0
    assert "4/10 steps into the next" in capsys.readouterr().err
    assert (cut / "intmodel.zip").read_bytes() == (whole / "intmodel.zip").read_bytes()
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (whole, cut))
    assert m1["history"] == m2["history"] and m1["val_images"] == 200 and m1["val_accuracy"] is not None


def test_eta_ignores_an_epoch_stretched_by_a_pause():
    # a run suspended for an hour during epoch 3 (the training log showed a 39-hour ETA): the estimate stays the
    # typical epoch's, and only this phase's epochs count
    seconds = [{"phase": "qat", "epoch": e, "seconds": s} for e, s in enumerate([320.0, 330.0, 4120.0, 325.0], 1)]
    seconds.append({"phase": "float", "epoch": 1, "seconds": 10.0})
    assert train_mod.eta_seconds(seconds, "qat", 10) == pytest.approx(327.5 * 10)
    assert train_mod.eta_seconds(seconds[:3], "qat", 4) == pytest.approx(330.0 * 4)
    assert train_mod.eta_seconds(seconds, "finetune", 3) == 0.0


def test_eta_follows_the_recent_epochs_after_a_resume():
    # a run whose first 13 epochs shared the machine (600 s each) and whose last 5 ran alone (160 s): the estimate is
    # the recent pace, not the median of the whole history (which would still say 600 s)
    times = [600.0] * 13 + [158.0, 160.0, 161.0, 2000.0, 159.0]
    seconds = [{"phase": "qat", "epoch": e, "seconds": s} for e, s in enumerate(times, 1)]
    assert train_mod.eta_seconds(seconds, "qat", 10) == pytest.approx(160.0 * 10)


def test_distillation_teacher_phase_resumes_exactly_and_changes_the_student(tmp_path, monkeypatch, capsys):
    """With distill > 0 a float CNN teacher trains first (its own checkpointed phase); interrupted right after its
    last epoch, the rerun gives the uninterrupted model byte for byte; its soft targets change the student."""
    args = ["--epochs", "1", "--finetune-epochs", "1", "--set", "embed_dim=16", "--set", "heads=2",
            "--set", "warmup_epochs=0", "--set", "teacher_epochs=3", "--no-qonnx"]
    whole, cut, plain = tmp_path / "whole", tmp_path / "cut", tmp_path / "plain"
    assert flow.main(["train-quant", *args, "--set", "distill=0.5", "--out", str(whole)]) == 0
    metrics = json.loads((whole / "metrics.json").read_text())
    teacher_epochs = [h for h in metrics["history"] if h["phase"] == "teacher" and "epoch" in h]
    assert [h["epoch"] for h in teacher_epochs] == [1, 2, 3]
    assert teacher_epochs[-1]["loss"] < teacher_epochs[0]["loss"]
    (tested,) = [h for h in metrics["history"] if h["phase"] == "teacher" and "test_accuracy" in h]
    assert tested["test_accuracy"] > 0.5        # three epochs of a small CNN on the digits (chance: 0.1)
    assert metrics["golden_equals_torch"] is True

    real_save = train_mod.save_checkpoint

    def interrupt_after_the_teacher(path, state):
        real_save(path, state)
        if state["phase"] == "teacher" and state["epoch"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "save_checkpoint", interrupt_after_the_teacher)
    assert flow.main(["train-quant", *args, "--set", "distill=0.5", "--out", str(cut)]) == 130
    monkeypatch.setattr(train_mod, "save_checkpoint", real_save)
    capsys.readouterr()
    assert flow.main(["train-quant", *args, "--set", "distill=0.5", "--out", str(cut)]) == 0
    err = capsys.readouterr().err
    assert "phase teacher, 3 epoch(s) done" in err and "teacher  epoch" not in err
    assert (cut / "intmodel.zip").read_bytes() == (whole / "intmodel.zip").read_bytes()

    assert flow.main(["train-quant", *args, "--out", str(plain)]) == 0
    assert (plain / "intmodel.zip").read_bytes() != (whole / "intmodel.zip").read_bytes()
    assert not any(h["phase"] == "teacher" for h in json.loads((plain / "metrics.json").read_text())["history"])


@pytest.mark.unit
def test_distillation_loss_is_zero_at_the_teacher_and_pulls_the_student_toward_it():
    import torch
    from quant.teacher import distillation_loss
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(8, 10, generator=g) * 3
    assert float(distillation_loss(teacher.clone(), teacher, 4.0)) == pytest.approx(0.0, abs=1e-6)
    student = torch.randn(8, 10, generator=g, requires_grad=True)
    loss = distillation_loss(student, teacher, 4.0)
    assert float(loss.detach()) > 0
    loss.backward()
    with torch.no_grad():
        stepped = student - 0.5 * student.grad
    assert float(distillation_loss(stepped, teacher, 4.0)) < float(loss.detach())
    # a constant added to every logit of a row changes no softmax, so no loss
    assert float(distillation_loss(teacher + 5.0, teacher, 2.0)) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.unit
@pytest.mark.parametrize("setting, message", [("distill=1.5", "distill=1.5 is invalid"),
                                              ("distill_temperature=0", "distill_temperature=0 is invalid"),
                                              ("teacher_epochs=-1", "teacher_epochs=-1 is invalid")])
def test_bad_distillation_settings_are_refused(setting, message):
    from flowerrors import FlowError
    from quant import presets
    with pytest.raises(FlowError, match=message):
        presets.resolve("digits", [setting])
