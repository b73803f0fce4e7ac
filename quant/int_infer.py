"""Integer inference of an exported IntModel with torch ops: a second, independent implementation of docs/intmodel.md.

It proves the export is faithful (tests compare it with golden.inference.run layer by layer) and evaluates
the integer accuracy quickly. Convolutions and matrix products run in float64 where every partial sum is
provably below 2^53 (so the result is the exact integer), otherwise in int64.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

EXACT_LIMIT = float(2 ** 53)


def _exact(x: torch.Tensor, w: torch.Tensor) -> bool:
    return float(x.abs().max()) * float(w.abs().flatten(1).sum(1).max()) < EXACT_LIMIT


def conv3x3(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x [M, Cin, H, W] int64 -> [M, Cout, H, W] int64, zero padding 1."""
    if _exact(x, w):
        out = F.conv2d(x.double(), w.double(), padding=1).round().long()
    else:
        m, _, h, wd = x.shape
        cols = F.unfold(x.double(), 3, padding=1).round().long()            # [M, Cin*9, H*W]
        out = torch.einsum("ok,mkp->mop", w.flatten(1), cols).view(m, -1, h, wd)
    return out + b.view(1, -1, 1, 1)


def linear(s: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per token: s [M, Cin, N] -> [M, Cout, N]."""
    if _exact(s, w):
        out = torch.einsum("ok,mkn->mon", w.double(), s.double()).round().long()
    else:
        out = torch.einsum("ok,mkn->mon", w, s)
    return out + b.view(1, -1, 1)


def lif(x: torch.Tensor, theta: torch.Tensor, T: int) -> torch.Tensor:
    """x [T, ...] int64 -> spikes [T, ...] int64; U = V·2^T, hard reset (docs/intmodel.md)."""
    u = torch.zeros_like(x[0])
    out = torch.empty_like(x)
    for t in range(x.shape[0]):
        u_h = torch.bitwise_right_shift(u + torch.bitwise_left_shift(x[t], T), 1)
        s = u_h >= theta
        u = torch.where(s, torch.zeros_like(u_h), u_h)
        out[t] = s.long()
    return out


def run(model, images, trace: bool = False):
    """(logits [B, K] numpy int64, trace dict with golden's key names as numpy int64)."""
    a = {k: torch.from_numpy(np.ascontiguousarray(v)).long() for k, v in model.arrays.items()}
    u = torch.from_numpy(np.asarray(model.check_images(images))).long()
    T, B = model.T, u.shape[0]
    tr: dict[str, np.ndarray] = {}

    def rec(key, value):
        if trace:
            tr[key] = value.numpy().copy()
        return value

    stages = model.stages
    acc0 = conv3x3(u, a["tok0.w"], a["tok0.b"])
    acc = rec("tok0.acc", acc0.unsqueeze(0).expand(T, *acc0.shape).contiguous())
    for i in range(1, len(stages)):
        s = rec(f"tok{i-1}.spikes", lif(acc, a[f"tok{i-1}.theta"].view(-1, 1, 1), T))
        flat = s.flatten(0, 1)
        if stages[i]["pool"]:
            # max over 0/1 equals the OR; max_pool2d's implicit -inf padding never wins against a real 0.
            flat = F.max_pool2d(flat.double(), 3, 2, 1).long()
            rec(f"tok{i}.pooled", flat.view(T, B, *flat.shape[1:]))
        acc = conv3x3(flat, a[f"tok{i}.w"], a[f"tok{i}.b"])
        acc = rec(f"tok{i}.acc", acc.view(T, B, *acc.shape[1:]))
    x = rec("stream.0", acc.flatten(3))
    C, N = x.shape[2], x.shape[3]
    h = model.heads
    d = C // h
    attn_theta = 4 << T
    for j in range(model.blocks):
        p = f"blk{j}."
        s = rec(p + "ssa_spikes", lif(x, a[p + "ssa_theta"].view(-1, 1), T))
        qkv = []
        for name in ("q", "k", "v"):
            acc = rec(p + name + ".acc", linear(s.flatten(0, 1), a[p + name + ".w"], a[p + name + ".b"]).view(x.shape))
            qkv.append(rec(p + name + ".spikes", lif(acc, a[p + name + ".theta"].view(-1, 1), T)))
        qh, kh, vh = (t.view(T, B, h, d, N) for t in qkv)
        kv = rec(p + "kv", torch.einsum("tbhin,tbhjn->tbhij", kh, vh))
        y = rec(p + "y", torch.einsum("tbhin,tbhij->tbhjn", qh, kv).reshape(T, B, C, N))
        att = rec(p + "attn_spikes", lif(y, attn_theta, T))
        proj = rec(p + "proj.acc", linear(att.flatten(0, 1), a[p + "proj.w"], a[p + "proj.b"]).view(x.shape))
        x = rec(p + "stream_mid", x + proj)
        s2 = rec(p + "mlp_spikes", lif(x, a[p + "mlp_theta"].view(-1, 1), T))
        acc = rec(p + "fc1.acc", linear(s2.flatten(0, 1), a[p + "fc1.w"], a[p + "fc1.b"]).view(T, B, -1, N))
        hid = rec(p + "fc1.spikes", lif(acc, a[p + "fc1.theta"].view(-1, 1), T))
        fc2 = rec(p + "fc2.acc", linear(hid.flatten(0, 1), a[p + "fc2.w"], a[p + "fc2.b"]).view(x.shape))
        x = rec(p + "stream_out", x + fc2)
    z = rec("head.z", x.sum(dim=(0, 3)))
    logits = rec("logits", (z.unsqueeze(1) * a["head.w"].unsqueeze(0)).sum(-1) + a["head.b"])
    return logits.numpy(), tr


def classify(logits: np.ndarray) -> np.ndarray:
    """Argmax, ties to the lowest index (torch.argmax gives no such guarantee, so use numpy's)."""
    return np.argmax(logits, axis=-1)
