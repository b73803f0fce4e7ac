"""Dataset readers (on small synthetic files in the real formats) and the non-default presets' shapes."""
import gzip
import pickle

import numpy as np
import pytest
import torch

from flowerrors import FlowError
from quant import data, presets
from quant.export import to_intmodel
from quant.model import Spikingformer, fold

pytestmark = pytest.mark.unit


def write_idx(path, array, compress):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)


@pytest.mark.parametrize("compress", [False, True])
def test_fashion_mnist_idx_reader(tmp_path, compress):
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28)), "train-labels-idx1-ubyte": np.arange(6),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28)), "t10k-labels-idx1-ubyte": np.arange(3)}
    for name, a in arrays.items():
        write_idx(tmp_path / name, a, compress)
    xtr, ytr, xte, yte = data.load("fashion-mnist", str(tmp_path))
    assert xtr.shape == (6, 1, 28, 28) and np.array_equal(xtr[:, 0], arrays["train-images-idx3-ubyte"])
    assert np.array_equal(yte, [0, 1, 2]) and xte.dtype == np.int64


def test_truncated_idx_file_is_refused(tmp_path):
    write_idx(tmp_path / "x", np.zeros((4, 5, 5)), False)
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes()[:-7])
    with pytest.raises(FlowError, match="truncated"):
        data.read_idx(str(tmp_path / "x"))


def test_cifar10_pickle_reader(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072)).astype(np.uint8), b"labels": [1, 2, 3, 4]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    xtr, ytr, xte, yte = data.load("cifar10", str(tmp_path))
    assert xtr.shape == (20, 3, 32, 32) and xte.shape == (4, 3, 32, 32) and list(yte) == [1, 2, 3, 4]
    with open(folder / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")[b"data"]
    assert np.array_equal(xte[2, 1].ravel(), raw[2, 1024:2048])  # channel-major rows, as CIFAR stores them


@pytest.mark.parametrize("preset, tokens", [("fashion-mnist", 16), ("cifar10-4-384", 64)])
def test_other_presets_build_run_and_export(preset, tokens):
    cfg, _ = presets.resolve(preset, ["blocks=1"] if preset == "cifar10-4-384" else None)
    torch.manual_seed(0)
    model = fold(Spikingformer(cfg).eval()).eval()
    assert model.tokens() == tokens
    u = torch.randint(0, 256, (1, cfg["in_channels"], *cfg["image_size"])).float()
    with torch.no_grad():
        assert model(u).shape == (1, 10)
    im = to_intmodel(model)
    assert im.tokens == tokens and im.input_bits == 8


def test_missing_or_damaged_fashion_file_is_named(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28)), "train-labels-idx1-ubyte": np.arange(6),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28))}
    for name, a in arrays.items():
        write_idx(tmp_path / name, a, True)
    with pytest.raises(FlowError, match=r"t10k-labels-idx1-ubyte\(\.gz\) is not in .*make data.*--data-dir"):
        data.load("fashion-mnist", str(tmp_path))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(3), True)
    gz = tmp_path / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:40])   # a truncated download
    with pytest.raises(FlowError, match=r"cannot read .*train-images-idx3-ubyte\.gz.*restore the file"):
        data.load("fashion-mnist", str(tmp_path))
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (6, 14, 28)), True)
    with pytest.raises(FlowError, match="not 28x28"):
        data.load("fashion-mnist", str(tmp_path))
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (5, 28, 28)), True)
    with pytest.raises(FlowError, match="5 images"):
        data.load("fashion-mnist", str(tmp_path))


def test_validation_split_is_stratified_fixed_and_disjoint():
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(10), 50)
    x = np.arange(len(y))[:, None, None, None] + np.zeros((1, 1, 2, 2), np.int64)
    xtr, ytr, xva, yva = data.validation_split(x, y, 100, seed=0)
    assert len(xva) == 100 and len(xtr) == 400
    assert np.array_equal(np.bincount(yva), np.full(10, 10))   # stratified: 10 of every class
    assert not set(xva[:, 0, 0, 0]) & set(xtr[:, 0, 0, 0])     # disjoint
    again = data.validation_split(x, y, 100, seed=0)
    assert np.array_equal(again[2], xva)                      # fixed by the seed
    assert not np.array_equal(data.validation_split(x, y, 100, seed=1)[2], xva)
    assert len(data.validation_split(x, y, 0)[2]) == 0
    with pytest.raises(FlowError, match="val_size"):
        data.validation_split(x, y, 500)
    del rng


def test_real_fashion_mnist_from_the_debian_package():
    # `make test` installs Debian's dataset-fashion-mnist first (`make data`)
    xtr, ytr, xte, yte = data.load("fashion-mnist")
    assert xtr.shape == (60000, 1, 28, 28) and xte.shape == (10000, 1, 28, 28)
    assert np.array_equal(np.bincount(ytr), np.full(10, 6000)) and np.array_equal(np.bincount(yte), np.full(10, 1000))
    assert xtr.max() == 255 and xtr.min() == 0
