"""Width analysis by interval arithmetic: every accumulator, membrane, stream and logit range, derived from the
exported integers, so the hardware can size each register with no overflow possible (docs/intmodel.md, "Widths").

All ranges are per channel first (thresholds and biases are per channel) and then reduced to one Range per
quantity. `analyze` is checked against brute-force enumeration on small models in the tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import primitives as P
from .errors import WidthError
from .graph import steps
from .intmodel import IntModel

# What the generated hardware supports; a model beyond these is refused before any RTL is written.
HW_LIMITS = {"weight_bits": 16, "acc_bits": 32, "logit_bits": 48}


def signed_bits(lo: int, hi: int) -> int:
    """Smallest two's-complement width holding every integer in [lo, hi] (at least 1 bit)."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


@dataclass(frozen=True)
class Range:
    lo: int
    hi: int

    @property
    def bits(self) -> int:
        return signed_bits(self.lo, self.hi)

    def __contains__(self, value) -> bool:
        return self.lo <= value <= self.hi


def _reduce(lo, hi) -> Range:
    return Range(int(np.min(lo)), int(np.max(hi)))


def spike_layer_range(w: np.ndarray, b: np.ndarray):
    """Per output channel [lo, hi] of Σ w·s + b over 0/1 inputs s (w [Cout, ...])."""
    w2 = w.reshape(w.shape[0], -1)
    return b + np.minimum(w2, 0).sum(1), b + np.maximum(w2, 0).sum(1)


def lif_membrane_range(xlo, xhi, theta, T: int):
    """Per channel range of the LIF's pre-shift sum U + (X << T) over T steps, for inputs in [xlo, xhi].

    The sum is the widest value the LIF datapath holds (U_H is half of it, the stored U lies between).
    """
    xlo, xhi, theta = (np.asarray(v, dtype=np.int64) for v in (xlo, xhi, theta))
    ulo = np.zeros(np.broadcast(xlo, theta).shape, dtype=np.int64)
    uhi = ulo.copy()
    slo, shi = ulo.copy(), ulo.copy()
    for _ in range(T):
        sum_lo, sum_hi = ulo + (xlo << T), uhi + (xhi << T)
        slo, shi = np.minimum(slo, sum_lo), np.maximum(shi, sum_hi)
        uh_lo, uh_hi = sum_lo >> 1, sum_hi >> 1
        can_spike = uh_hi >= theta
        can_rest = uh_lo <= theta - 1
        rest_hi = np.minimum(uh_hi, theta - 1)
        ulo = np.where(can_rest, np.where(can_spike, np.minimum(uh_lo, 0), uh_lo), 0)
        uhi = np.where(can_rest, np.where(can_spike, np.maximum(rest_hi, 0), rest_hi), 0)
    return slo, shi


def analyze(model: IntModel) -> dict[str, Range]:
    """Range of every quantity the hardware holds. Keys follow golden trace names, plus `<lif>.membrane`
    for each LIF's pre-shift sum, `<layer>.w` for weights and `pixel` for the input."""
    a, T = model.arrays, model.T
    out: dict[str, Range] = {}
    for name, arr in a.items():
        if name.endswith(".w"):
            out[name] = _reduce(arr.min(), arr.max())
    pmax = (1 << model.input_bits) - 1
    out["pixel"] = Range(0, pmax)
    n, d = model.tokens, model.d
    per_channel: dict[str, tuple] = {}            # trace key -> per-channel (lo, hi)

    def lif(name, xlo, xhi, theta):
        out[name + ".membrane"] = _reduce(*lif_membrane_range(xlo, xhi, theta, T))

    for step in steps(model):                     # golden/graph.py: the one walk over the network
        if step.op == "pixel_conv":
            w0 = a[step.name + ".w"].reshape(step.cout, -1)
            b = a[step.name + ".b"]
            lo, hi = b + pmax * np.minimum(w0, 0).sum(1), b + pmax * np.maximum(w0, 0).sum(1)
        elif step.op in ("spike_conv", "spike_linear"):
            lo, hi = spike_layer_range(a[step.name + ".w"], a[step.name + ".b"])
        elif step.op == "stream_lif":
            lif(step.name, *per_channel[step.src], a[step.theta])
            continue
        elif step.op == "attention":
            p = step.name[:-len("attn")]
            out[p + "kv"] = Range(0, n)
            out[p + "y"] = Range(0, n * d)
            lif(step.name, 0, n * d, P.attn_theta(T))
            continue
        else:  # head
            xlo, xhi = per_channel[step.src]
            zlo, zhi = T * n * xlo, T * n * xhi
            out["head.z"] = _reduce(zlo, zhi)
            w = a["head.w"]
            llo = a["head.b"] + np.where(w > 0, w * zlo, w * zhi).sum(1)
            lhi = a["head.b"] + np.where(w > 0, w * zhi, w * zlo).sum(1)
            out["logits"] = _reduce(llo, lhi)
            continue
        out[step.acc] = _reduce(lo, hi)
        if step.theta:
            lif(step.name, lo, hi, a[step.theta])
        if step.stream:
            if not step.stream_init:
                slo, shi = per_channel[step.stream_in]
                lo, hi = slo + lo, shi + hi
            per_channel[step.stream] = (lo, hi)
            out[step.stream] = _reduce(lo, hi)
    return out


def check_hw_limits(model: IntModel, limits: dict | None = None) -> dict[str, Range]:
    """Refuse, with one sentence and the fix, a model whose widths exceed what the hardware supports."""
    limits = {**HW_LIMITS, **(limits or {})}
    ranges = analyze(model)
    for name, r in ranges.items():
        if name.endswith(".w"):
            kind, cap = "weight", limits["weight_bits"]
        elif name in ("logits", "head.z"):
            kind, cap = "logit", limits["logit_bits"]
        else:
            kind, cap = "accumulator", limits["acc_bits"]
        if r.bits > cap:
            raise WidthError(f"{name} needs {r.bits}-bit {kind}s but the hardware supports at most {cap}; "
                            "retrain with fewer weight bits (e.g. --weight-bits 8) or a smaller model.")
    return ranges
