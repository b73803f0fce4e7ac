"""Whole-model bit-exact inference: the reference every other stage is checked against."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import primitives as P
from .graph import steps, trace_keys
from .intmodel import IntModel


@dataclass
class InferenceResult:
    """One golden run: what came out, and (trace=True) every layer-graph value, beside the images that went in, so
    a consumer that needs both (the cycle model reads the first conv's pixel bits) gets them from one object."""
    logits: np.ndarray            # [B, K] int64
    classes: np.ndarray           # [B]
    trace: dict = field(default_factory=dict)  # empty unless trace=True; keys: layer_order(), values [T, B, ...]
    images: np.ndarray | None = None           # the input [B, Cin, H, W] int64, as model.check_images returned it


def layer_order(model: IntModel) -> list[str]:
    """Trace keys in execution order (the order in which mismatches are reported)."""
    return trace_keys(model)


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
    return InferenceResult(logits, P.argmax_lowest(logits), tr, x)


def _run_batch(model: IntModel, u: np.ndarray, keep: bool):
    """One batch through the layer graph (golden/graph.py); every value the graph names is kept in `values` until
    the walk is over, and in the returned trace when `keep`."""
    T = model.T
    a = model.arrays
    values: dict[str, np.ndarray] = {"pixels": u}
    for step in steps(model):
        if step.op == "pixel_conv":
            acc0 = P.conv3x3(u, a[step.name + ".w"], a[step.name + ".b"])
            values[step.acc] = np.broadcast_to(acc0, (T, *acc0.shape)).copy()
        elif step.op == "spike_conv":
            s = values[step.src]
            if step.pool:
                s = values[step.pooled] = P.or_pool(s)
            values[step.acc] = P.spike_conv3x3(s, a[step.name + ".w"], a[step.name + ".b"])
        elif step.op == "spike_linear":
            values[step.acc] = P.spike_linear(values[step.src], a[step.name + ".w"], a[step.name + ".b"])
        elif step.op == "stream_lif":
            values[step.spikes] = P.lif(values[step.src], a[step.theta][:, None], T)
        elif step.op == "attention":
            p = step.name[:-len("attn")]
            kv, y = P.attention(values[p + "q.spikes"], values[p + "k.spikes"], values[p + "v.spikes"], model.heads)
            values[p + "kv"], values[p + "y"] = kv, y
            values[step.spikes] = P.lif(y, P.attn_theta(T), T)
        elif step.op == "head":
            values["head.z"], values["logits"] = P.head(values[step.src], a["head.w"], a["head.b"])
        if step.weighted and step.theta:
            theta = a[step.theta][:, None, None] if len(step.shape) == 2 else a[step.theta][:, None]
            values[step.spikes] = P.lif(values[step.acc], theta, T)
        if step.stream:
            acc = values[step.acc]
            values[step.stream] = acc.reshape(*acc.shape[:3], -1) if step.stream_init else values[step.stream_in] + acc
    trace = {key: values[key] for key in trace_keys(model)} if keep else {}
    return values["logits"], trace
