"""The model zoo: a shipped model is installed into an empty build folder (model, metrics, test set) with a
message, its hashes are checked, and the stages then run from it."""
import json
import os

import numpy as np
import pytest

import flow
from flowerrors import FlowError
from golden.errors import IntModelError
from golden.intmodel import load, load_testset, make_config, random_intmodel, save
from quant import data, zoo

pytestmark = pytest.mark.unit

SMALL = make_config(tokenizer=[{"out": 4, "pool": False}, {"out": 8, "pool": True}], heads=2, mlp_hidden=16)


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A zoo with one digits entry (a small random model) and an empty build folder."""
    monkeypatch.setattr(zoo, "ZOO", str(tmp_path / "models"))
    model = random_intmodel(SMALL, seed=3)
    out = tmp_path / "run"
    out.mkdir()
    digest = save(model, str(out / "intmodel.zip"))
    metrics = {"preset": "digits", "params": 1234, "weight_bits": 8, "train_seconds": 60.0,
               "train_config": {"dataset": "digits"}, "intmodel_sha256": digest, "int_test_accuracy": 0.5,
               "float_test_accuracy": 0.5, "folded_float_test_accuracy": 0.5, "golden_equals_torch": True,
               "test_images": 360, "history": [{"phase": "qat", "epoch": 1, "loss": 2.0, "train_accuracy": 0.2,
                                                "val_accuracy": None}],
               "epoch_seconds": [{"phase": "qat", "epoch": 1, "seconds": 60.0}]}
    (out / "metrics.json").write_text(json.dumps(metrics))
    folder = zoo.ship("digits", str(out))
    return model, tmp_path / "build", folder


def test_provide_installs_the_shipped_model_once(shipped, capsys):
    model, build, folder = shipped
    assert sorted(os.listdir(folder)) == ["intmodel.zip", "metrics.json", "train-log.txt"]
    assert "qat           1  2.0000     20.00%" in (open(os.path.join(folder, "train-log.txt")).read())
    assert zoo.provide("digits", str(build)) is True
    err = capsys.readouterr().out
    assert "using the shipped model" in err and model.sha256[:12] in err and "train-quant --preset digits" in err
    assert load(str(build / "digits" / "intmodel.zip")).sha256 == model.sha256
    images, labels = load_testset(str(build / "digits" / "testset.npz"))
    _, _, want_images, want_labels = data.load("digits")
    assert np.array_equal(images, want_images) and np.array_equal(labels, want_labels)
    assert oct(os.stat(build / "digits" / "intmodel.zip").st_mode & 0o777) == "0o644"
    # a build folder with its own model is left alone
    assert zoo.provide("digits", str(build)) is False
    assert zoo.provide("fashion-mnist-nowhere", str(build)) is False


def test_a_swapped_or_tampered_zoo_entry_is_refused(shipped):
    model, build, folder = shipped
    metrics_path = os.path.join(folder, "metrics.json")
    metrics = json.loads(open(metrics_path).read())
    metrics["intmodel_sha256"] = "0" * 64
    open(metrics_path, "w").write(json.dumps(metrics))
    with pytest.raises(FlowError, match="is not the model its metrics.json describes.*git checkout -- models/"):
        zoo.provide("digits", str(build))
    assert not (build / "digits").exists()
    zip_path = os.path.join(folder, "intmodel.zip")
    raw = bytearray(open(zip_path, "rb").read())
    raw[-200] ^= 0xFF
    open(zip_path, "wb").write(bytes(raw))
    with pytest.raises(IntModelError):
        zoo.provide("digits", str(build))


def test_gen_rtl_runs_from_the_zoo(shipped, tmp_path, monkeypatch, capsys):
    model, build, _ = shipped
    from golden import artifacts
    monkeypatch.setattr(artifacts, "PROJECT", str(tmp_path))   # the stages' default build folder is <project>/build
    assert flow.main(["gen-rtl", "--preset", "digits", "--lanes", "2"]) == 0
    err = capsys.readouterr().out
    assert "using the shipped model" in err
    manifest = json.loads((build / "digits" / "rtl" / "manifest.json").read_text())
    assert manifest["model_sha256"] == model.sha256


@pytest.mark.parametrize("preset", sorted(p for p in os.listdir(zoo.ZOO) if os.path.isdir(os.path.join(zoo.ZOO, p)))
                         if os.path.isdir(zoo.ZOO) else [])
def test_every_shipped_model_passes_its_checks(preset):
    model, metrics = zoo.check(zoo.entry(preset))
    assert metrics["preset"] == preset and metrics["golden_equals_torch"] is True
    assert model.config == metrics["config"]


@pytest.mark.train
def test_shipped_fashion_mnist_model_golden_equals_torch_on_300_test_images(tmp_path):
    """The zoo's Fashion-MNIST model: hash-checked, installed with its test set (Debian's dataset-fashion-mnist,
    `make data`), and golden == torch integer inference on a stratified 300-image subset, whose accuracy agrees with
    the full-test-set figure training recorded (3 binomial standard deviations)."""
    from golden.intmodel import stratified_subset
    from quant.cli import evaluate_intmodel
    model, metrics = zoo.check(zoo.entry("fashion-mnist"))
    assert metrics["golden_equals_torch"] and metrics["test_images"] == 10000
    assert metrics["params"] <= 350_000
    assert zoo.provide("fashion-mnist", str(tmp_path)) is True
    images, labels = load_testset(str(tmp_path / "fashion-mnist" / "testset.npz"))
    assert images.shape == (10000, 1, 28, 28)
    idx = stratified_subset(labels, 300)
    ev = evaluate_intmodel(model, images[idx], labels[idx])
    assert ev["golden_equals_torch"], ev["first_mismatch"]
    p = metrics["int_test_accuracy"]
    assert abs(ev["int_test_accuracy"] - p) <= 3 * (p * (1 - p) / 300) ** 0.5
