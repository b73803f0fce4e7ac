"""Trace comparison: the first difference, named by layer, timestep, image, token and channel."""
from __future__ import annotations

import numpy as np


def _locate(key: str, shape: tuple, index: tuple) -> str:
    idx = [int(i) for i in index]
    if key in ("logits",):
        return f"image {idx[0]}, class {idx[1]}"
    if key == "head.z":
        return f"image {idx[0]}, channel {idx[1]}"
    if key.endswith(".kv"):
        return f"timestep {idx[0]}, image {idx[1]}, head {idx[2]}, K channel {idx[3]}, V channel {idx[4]}"
    if len(shape) == 5:  # tokenizer map [T, B, C, H, W]
        t, b, c, y, x = idx
        return f"timestep {t}, image {b}, token {y * shape[4] + x} (y {y}, x {x}), channel {c}"
    if len(shape) == 4:  # [T, B, C, N]
        t, b, c, n = idx
        return f"timestep {t}, image {b}, token {n}, channel {c}"
    return "index " + str(tuple(idx))


def first_mismatch(ref: dict, dut: dict, order=None) -> str | None:
    """None when every key present in both agrees; otherwise one sentence about the first difference.

    Keys are visited in `order` (default: ref's insertion order, which golden makes execution order). Within a
    layer the first difference is the earliest timestep, then image, then token, then channel.
    """
    for key in (order or list(ref)):
        if key not in ref or key not in dut:
            continue
        r, d = np.asarray(ref[key]), np.asarray(dut[key])
        if r.shape != d.shape:
            return f"layer {key}: shape {d.shape} differs from the reference's {r.shape}"
        diff = r.astype(np.int64) != d.astype(np.int64)
        if not diff.any():
            continue
        if r.ndim == 5 and not key.endswith(".kv"):
            perm = (0, 1, 3, 4, 2)      # t, b, y, x, c
        elif r.ndim == 4:
            perm = (0, 1, 3, 2)         # t, b, n, c
        else:
            perm = tuple(range(r.ndim))
        pos = np.argwhere(diff.transpose(perm))[0]
        index = [0] * r.ndim
        for axis, value in zip(perm, pos):
            index[axis] = value
        index = tuple(index)
        return (f"layer {key}, {_locate(key, r.shape, index)}: expected {int(r[index])}, got {int(d[index])}")
    return None
