"""Datasets as unsigned-integer images [N, Cin, H, W] + labels. Nothing is ever downloaded."""
from __future__ import annotations

import gzip
import os
import pickle
import zlib

import numpy as np

from flowerrors import FlowError

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
# Pixel bit width each dataset's integers need (the model's input_bits must be at least this).
DATASET_BITS = {"digits": 5, "fashion-mnist": 8, "cifar10": 8}
# Class names in label order (the one place they are spelled; the report's confusion matrix and per-class table).
CLASS_NAMES = {
    "digits": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}


def class_names(dataset: str | None, num_classes: int) -> list[str]:
    """The names of a dataset's classes, or the label numbers when the dataset is unknown or has another count."""
    names = CLASS_NAMES.get(dataset or "")
    return list(names) if names and len(names) == num_classes else [str(i) for i in range(num_classes)]


def load(name: str, data_dir: str | None = None):
    """(train_x, train_y, test_x, test_y): int64 images [N, Cin, H, W] in 0..2^B-1 and int64 labels."""
    if name == "digits":
        return load_digits()
    if name == "fashion-mnist":
        return load_fashion_mnist(data_dir or FASHION_DIR)
    if name == "cifar10":
        return load_cifar10(data_dir)
    raise FlowError(f"unknown dataset '{name}'; choose digits, fashion-mnist or cifar10.")


def load_digits():
    """sklearn's bundled 8x8 digits (pixels 0..16), split stratified 80/20 with seed 0: 1,437 / 360 images."""
    from sklearn.datasets import load_digits as sk_load
    from sklearn.model_selection import train_test_split

    d = sk_load()
    x = d.images.astype(np.int64)[:, None]
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return xtr, ytr, xte, yte


def read_idx(path: str) -> np.ndarray:
    """An IDX file (MNIST format, raw or gzip) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise FlowError(f"cannot read {path} ({getattr(exc, 'strerror', None) or exc}); restore the file (`make data` "
                        "reinstalls Debian's copy) or pass another --data-dir.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise FlowError(f"{path} is not an unsigned-byte IDX file; pass a --data-dir with the original IDX files.")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) - offset != count:
        raise FlowError(f"{path} is truncated ({len(raw) - offset} of {count} bytes); restore the file.")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _find(directory: str, stem: str) -> str | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    return None


FASHION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte")


def load_fashion_mnist(directory: str):
    """The official 60 k / 10 k split, images [N, 1, 28, 28] in 0..255."""
    paths = []
    for stem in FASHION_FILES:
        path = _find(directory, stem)
        if path is None:
            raise FlowError(f"Fashion-MNIST file {stem}(.gz) is not in {directory}; install the data with "
                            "`apt-get install dataset-fashion-mnist` (or `make data`) or pass --data-dir with your "
                            "copy of the four IDX files.")
        paths.append(path)
    arrays = [read_idx(p) for p in paths]
    for images, labels, ipath, lpath in ((arrays[0], arrays[1], paths[0], paths[1]),
                                         (arrays[2], arrays[3], paths[2], paths[3])):
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise FlowError(f"{ipath} holds images of shape {images.shape[1:]}, not 28x28; pass a --data-dir with "
                            "the original IDX files.")
        if labels.ndim != 1 or len(labels) != len(images):
            raise FlowError(f"{lpath} holds {labels.shape} labels for {len(images)} images in {ipath}; pass a "
                            "--data-dir with matching IDX files.")
    for path, labels in ((paths[1], arrays[1]), (paths[3], arrays[3])):
        if labels.max() > 9:
            raise FlowError(f"{path} has label {int(labels.max())} (Fashion-MNIST has 0..9); restore the original file.")
    xtr, ytr, xte, yte = arrays
    return (xtr.astype(np.int64)[:, None], ytr.astype(np.int64), xte.astype(np.int64)[:, None], yte.astype(np.int64))


def validation_split(x: np.ndarray, y: np.ndarray, size: int, seed: int = 0):
    """(train_x, train_y, val_x, val_y): `size` images held out, stratified by class, fixed by `seed` (independent of
    the training seed, so every training run selects on the same images). size 0 holds out nothing."""
    if size <= 0:
        return x, y, x[:0], y[:0]
    if size >= len(x):
        raise FlowError(f"val_size={size} leaves no training images (the training set has {len(x)}); "
                        "use a smaller --set val_size.")
    from sklearn.model_selection import train_test_split
    xtr, xva, ytr, yva = train_test_split(x, y, test_size=size, stratify=y, random_state=seed)
    return xtr, ytr, xva, yva


def load_cifar10(directory: str | None):
    if directory and os.path.isdir(os.path.join(directory, "cifar-10-batches-py")):
        directory = os.path.join(directory, "cifar-10-batches-py")
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if not directory or any(not os.path.exists(os.path.join(directory, n)) for n in names):
        raise FlowError("CIFAR-10 python batches (data_batch_1..5, test_batch) were not found; pass --data-dir "
                        "pointing at the extracted cifar-10-batches-py directory.")
    parts = []
    for n in names:
        try:
            with open(os.path.join(directory, n), "rb") as f:
                d = pickle.load(f, encoding="bytes")
            parts.append((np.asarray(d[b"data"], dtype=np.int64).reshape(-1, 3, 32, 32),
                          np.asarray(d[b"labels"], dtype=np.int64)))
        except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as exc:
            raise FlowError(f"CIFAR-10 batch {n} is unreadable ({type(exc).__name__}); restore the "
                            "cifar-10-batches-py files.") from None
    xtr = np.concatenate([p[0] for p in parts[:5]])
    ytr = np.concatenate([p[1] for p in parts[:5]])
    return xtr, ytr, parts[5][0], parts[5][1]
