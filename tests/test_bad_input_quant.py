"""Bad input to `flow.py train-quant`: one clear sentence naming the problem and the fix, no traceback, and no
existing artifact overwritten."""
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import flow
from golden import widths
from golden.intmodel import load, random_intmodel, save, save_testset

pytestmark = pytest.mark.unit

ARTIFACTS = ("intmodel.zip", "metrics.json", "testset.npz", "model.qonnx.onnx")


def run_cli(capsys, *argv):
    rc = flow.main(["train-quant", *argv])
    err = capsys.readouterr().err
    return rc, err


def snapshot(directory):
    return {name: Path(directory, name).read_bytes() for name in sorted(os.listdir(directory))}


@pytest.fixture
def outdir(tmp_path):
    """An output directory holding earlier artifacts that must survive every failed run."""
    d = tmp_path / "out"
    d.mkdir()
    for name in ARTIFACTS:
        (d / name).write_bytes(b"earlier " + name.encode())
    return d


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "m.zip"
    save(random_intmodel(seed=3), str(path))
    return path


def one_sentence(err):
    assert err.startswith("flow.py train-quant: error: ") and "Traceback" not in err
    assert err.count("\n") == 1 and err.rstrip().endswith(".")


def test_unknown_preset(capsys, outdir):
    before = snapshot(outdir)
    rc, err = run_cli(capsys, "--preset", "imagenet", "--out", str(outdir))
    assert rc == 2
    one_sentence(err)
    assert "unknown preset 'imagenet'; choose one of: digits, fashion-mnist, cifar10-4-384" in err
    assert snapshot(outdir) == before


def test_unknown_setting(capsys, outdir):
    before = snapshot(outdir)
    rc, err = run_cli(capsys, "--set", "embedding=32", "--out", str(outdir))
    assert rc == 2
    one_sentence(err)
    assert "unknown setting 'embedding'" in err and "embed_dim" in err
    assert snapshot(outdir) == before


def test_unknown_option_is_rejected_by_the_parser(capsys):
    rc = flow.main(["train-quant", "--epoch-count", "3"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert err.startswith("flow.py train-quant: error: unrecognized arguments: --epoch-count 3; see "
                          "`python flow.py train-quant --help`."), err


def test_pixels_beyond_input_bits(capsys, outdir):
    before = snapshot(outdir)
    rc, err = run_cli(capsys, "--set", "input_bits=4", "--out", str(outdir))
    assert rc == 2
    one_sentence(err)
    assert "pixels span 0..16 but input_bits=4 allows 0..15; raise input_bits (e.g. --set input_bits=5)" in err
    assert snapshot(outdir) == before


def test_missing_fashion_mnist(capsys, outdir, tmp_path):
    before = snapshot(outdir)
    rc, err = run_cli(capsys, "--preset", "fashion-mnist", "--data-dir", str(tmp_path / "nowhere"), "--out", str(outdir))
    assert rc == 2
    one_sentence(err)
    assert "apt-get install dataset-fashion-mnist" in err and "--data-dir" in err
    assert snapshot(outdir) == before


def test_missing_cifar10(capsys, outdir):
    rc, err = run_cli(capsys, "--preset", "cifar10-4-384", "--out", str(outdir))
    assert rc == 2
    one_sentence(err)
    assert "cifar-10-batches-py" in err


def _rewrite_member(raw, name, change):
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members[name] = change(members[name])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, v in members.items():
            z.writestr(n, v)
    return buf.getvalue()


def _flip_last_byte(data):
    return data[:-1] + bytes([data[-1] ^ 1])


def _bump_version(data):
    manifest = json.loads(data)
    manifest["version"] = 99
    return json.dumps(manifest).encode()


def _corrupt(path, how):
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "garbage":
        path.write_bytes(b"\x00not a zip" * 50)
    elif how == "flipped":  # one changed array byte: the content hash must catch it
        path.write_bytes(_rewrite_member(raw, "head.b.npy", _flip_last_byte))
    elif how == "version":
        path.write_bytes(_rewrite_member(raw, "manifest.json", _bump_version))


@pytest.mark.parametrize("how, phrase", [("truncated", "corrupt or truncated"), ("garbage", "corrupt or truncated"),
                                         ("flipped", "content hash"), ("version", "format version 99")])
def test_damaged_model_file(capsys, model_file, outdir, how, phrase):
    _corrupt(model_file, how)
    before = snapshot(outdir)
    rc, err = run_cli(capsys, "--eval-model", str(model_file), "--out", str(outdir))
    assert rc == 2
    one_sentence(err)
    assert phrase in err and "python flow.py train-quant" in err
    assert snapshot(outdir) == before


def test_good_model_file_evaluates(capsys, model_file, tmp_path):
    images = np.random.default_rng(0).integers(0, 32, size=(12, 1, 8, 8))
    save_testset(str(tmp_path / "t.npz"), images, np.zeros(12, dtype=int))
    rc = flow.main(["train-quant", "--eval-model", str(model_file), "--testset", str(tmp_path / "t.npz")])
    out = capsys.readouterr().out
    assert rc == 0 and json.loads(out)["golden_equals_torch"] is True


@pytest.mark.parametrize("images, phrase", [
    (np.zeros((5, 1, 7, 8), dtype=int), "input has shape (5, 1, 7, 8) but the model expects [B, 1, 8, 8]"),
    (np.full((5, 1, 8, 8), 40), "input pixels span 40..40 but the model takes 0..31"),
    (np.full((5, 1, 8, 8), -1), "input pixels span -1..-1"),
])
def test_bad_test_images(capsys, model_file, tmp_path, images, phrase):
    path = tmp_path / "bad.npz"
    save_testset(str(path), images, np.zeros(len(images), dtype=int))
    rc, err = run_cli(capsys, "--eval-model", str(model_file), "--testset", str(path))
    assert rc == 2
    one_sentence(err)
    assert phrase in err


def test_model_too_wide_for_the_hardware(capsys, tmp_path):
    m = random_intmodel(seed=1)
    m.arrays["blk0.fc1.w"][0, 0] = 1 << 20
    path = tmp_path / "wide.zip"
    save(m, str(path))
    rc, err = run_cli(capsys, "--eval-model", str(path))
    assert rc == 2
    one_sentence(err)
    assert "blk0.fc1.w needs 22-bit weights but the hardware supports at most 16" in err


def test_export_beyond_hardware_limits_keeps_earlier_artifacts(capsys, outdir, monkeypatch):
    # Hardware with 4-bit weight storage cannot hold this 8-bit model: export must refuse before writing.
    monkeypatch.setitem(widths.HW_LIMITS, "weight_bits", 4)
    before = {k: v for k, v in snapshot(outdir).items() if k in ARTIFACTS}
    rc, err = run_cli(capsys, "--epochs", "0", "--finetune-epochs", "0", "--set", "embed_dim=16",
                      "--out", str(outdir))
    assert rc == 2
    assert "needs" in err and "hardware supports at most 4" in err and "--weight-bits" in err
    assert {k: v for k, v in snapshot(outdir).items() if k in ARTIFACTS} == before


def test_resume_refuses_a_damaged_or_foreign_checkpoint(capsys, outdir):
    (outdir / "checkpoint.pt").write_bytes(b"not a checkpoint")
    before = snapshot(outdir)
    rc, err = run_cli(capsys, "--out", str(outdir))
    assert rc == 2
    assert "checkpoint" in err and "unreadable" in err and "--restart" in err
    assert snapshot(outdir) == before
    # a checkpoint of other settings
    assert flow.main(["train-quant", "--epochs", "0", "--finetune-epochs", "0", "--set", "embed_dim=16",
                      "--no-qonnx", "--restart", "--out", str(outdir)]) == 0
    assert (outdir / "checkpoint.prev.pt").read_bytes() == b"not a checkpoint"   # --restart keeps the old one
    capsys.readouterr()
    before = snapshot(outdir)
    rc, err = run_cli(capsys, "--set", "embed_dim=32", "--out", str(outdir))
    assert rc == 2
    assert "was trained with different settings" in err.splitlines()[-1] and "--restart" in err
    assert snapshot(outdir) == before
    # an export-only setting is not a training setting: the same checkpoint resumes and exports under it
    assert flow.main(["train-quant", "--epochs", "0", "--finetune-epochs", "0", "--set", "embed_dim=16",
                      "--set", "head_weight_bits=9", "--no-qonnx", "--out", str(outdir)]) == 0
    err = capsys.readouterr().err
    assert "resuming from" in err and "head weights saturated at 9 bits" in err
    metrics = json.loads((outdir / "metrics.json").read_text())
    assert metrics["train_config"]["head_weight_bits"] == 9 and metrics["head_saturated"] >= 0
    assert int(np.abs(load(str(outdir / "intmodel.zip")).arrays["head.w"]).max()) <= 256


@pytest.mark.parametrize("value", ["5", "-1", "40", "true"])
def test_bad_head_weight_bits(capsys, outdir, value):
    before = snapshot(outdir)
    rc, err = run_cli(capsys, "--set", f"head_weight_bits={value}", "--out", str(outdir))
    assert rc == 2
    one_sentence(err)
    assert f"head_weight_bits={value.capitalize() if value == 'true' else value} is invalid" in err
    assert "0 (no limit)" in err
    assert snapshot(outdir) == before


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_a_gpu(capsys, outdir):
    before = snapshot(outdir)
    rc, err = run_cli(capsys, "--device", "cuda", "--out", str(outdir))
    assert rc == 2
    one_sentence(err)
    assert "--device cuda" in err and "--device cpu" in err
    assert snapshot(outdir) == before
