"""Whole-model bit-exact inference: the reference every other stage is checked against."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import primitives as P
from .intmodel import IntModel


@dataclass
class InferenceResult:
    logits: np.ndarray            # [B, K] int64
    classes: np.ndarray           # [B]
    trace: dict = field(default_factory=dict)  # empty unless trace=True; see layer_order()


def layer_order(model: IntModel) -> list[str]:
    """Trace keys in execution order (the order in which mismatches are reported)."""
    keys = []
    for i, stage in enumerate(model.stages):
        if i > 0 and stage["pool"]:
            keys.append(f"tok{i}.pooled")
        keys.append(f"tok{i}.acc")
        if i < len(model.stages) - 1:
            keys.append(f"tok{i}.spikes")
    keys.append("stream.0")
    for j in range(model.blocks):
        p = f"blk{j}."
        keys += [p + "ssa_spikes"]
        for name in ("q", "k", "v"):
            keys += [p + name + ".acc", p + name + ".spikes"]
        keys += [p + "kv", p + "y", p + "attn_spikes", p + "proj.acc", p + "stream_mid", p + "mlp_spikes",
                 p + "fc1.acc", p + "fc1.spikes", p + "fc2.acc", p + "stream_out"]
    keys += ["head.z", "logits"]
    return keys


def run(model: IntModel, images, trace: bool = False, batch: int = 256) -> InferenceResult:
    """Run the integer model on images [B, Cin, H, W] (unsigned ints). Batches internally to bound memory."""
    x = model.check_images(images)
    parts = [_run_batch(model, x[i:i + batch], trace) for i in range(0, len(x), batch)] or [_run_batch(model, x, trace)]
    logits = np.concatenate([p[0] for p in parts])
    tr = {}
    if trace:
        for key in parts[0][1]:
            axis = 0 if key in ("head.z", "logits") else 1
            tr[key] = np.concatenate([p[1][key] for p in parts], axis=axis)
    return InferenceResult(logits, P.argmax_lowest(logits), tr)


def _run_batch(model: IntModel, u: np.ndarray, keep: bool):
    T = model.T
    tr: dict[str, np.ndarray] = {}

    def rec(key, value):
        if keep:
            tr[key] = value
        return value

    a = model.arrays
    n_stages = len(model.stages)
    acc0 = P.conv3x3(u, a["tok0.w"], a["tok0.b"])
    acc = rec("tok0.acc", np.broadcast_to(acc0, (T, *acc0.shape)).copy())
    for i in range(1, n_stages):
        s = rec(f"tok{i-1}.spikes", P.lif(acc, a[f"tok{i-1}.theta"][:, None, None], T))
        if model.stages[i]["pool"]:
            s = rec(f"tok{i}.pooled", P.or_pool(s))
        acc = rec(f"tok{i}.acc", P.spike_conv3x3(s, a[f"tok{i}.w"], a[f"tok{i}.b"]))
    x = rec("stream.0", acc.reshape(*acc.shape[:3], -1))
    for j in range(model.blocks):
        p = f"blk{j}."
        s = rec(p + "ssa_spikes", P.lif(x, a[p + "ssa_theta"][:, None], T))
        qkv = {}
        for name in ("q", "k", "v"):
            acc = rec(p + name + ".acc", P.spike_linear(s, a[p + name + ".w"], a[p + name + ".b"]))
            qkv[name] = rec(p + name + ".spikes", P.lif(acc, a[p + name + ".theta"][:, None], T))
        kv, y = P.attention(qkv["q"], qkv["k"], qkv["v"], model.heads)
        rec(p + "kv", kv)
        rec(p + "y", y)
        att = rec(p + "attn_spikes", P.lif(y, P.attn_theta(T), T))
        x = rec(p + "stream_mid", x + rec(p + "proj.acc", P.spike_linear(att, a[p + "proj.w"], a[p + "proj.b"])))
        s2 = rec(p + "mlp_spikes", P.lif(x, a[p + "mlp_theta"][:, None], T))
        acc = rec(p + "fc1.acc", P.spike_linear(s2, a[p + "fc1.w"], a[p + "fc1.b"]))
        h = rec(p + "fc1.spikes", P.lif(acc, a[p + "fc1.theta"][:, None], T))
        x = rec(p + "stream_out", x + rec(p + "fc2.acc", P.spike_linear(h, a[p + "fc2.w"], a[p + "fc2.b"])))
    z, logits = P.head(x, a["head.w"], a["head.b"])
    rec("head.z", z)
    rec("logits", logits)
    return logits, tr
