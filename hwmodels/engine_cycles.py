"""Exact cycle model of the generated core (rtl/engine.py), from the IntModel and the image's golden trace.

Written from the engine's schedule, not from its code: the tests compare it with the RTL's cycle counter on every
simulated image. Cost per piece (P lanes, T timesteps, DRAIN = 7 cycles for the accumulate pipeline to empty):

  layer fetch                         2
  output (position, lane group)       2 + Σ_taps cost(tap) + epilogue
    tap out of the image              1
    tap in the image                  Σ_rows (3 + scan),  scan = nnz(row) + 1  (pooling: 2 per row, no scan)
    epilogue                          LIF DRAIN + T + 2 | stream add DRAIN + T + 3 | pool write 1 | head DRAIN + 1
  stream LIF output                   2 + (T + 3) + 1
  Kᵀ·V, per (lane group, K channel)   2N + DRAIN + 2
  head Z, per lane group              N·T + DRAIN + 2
  argmax                              K + 2
nnz(row) counts the non-zero T-bit words of the row's P channels (spike layers), the set bits of the pixel
(first conv), or the set bits of Z_c in two's complement (head): the event-driven part.
"""
from __future__ import annotations

import numpy as np

from golden.intmodel import IntModel
from golden.primitives import pack_words
from golden.widths import analyze


DRAIN = 7  # the engine's accumulate pipeline: SCAN → accumulators visible in 9 cycles
ROW_FIXED = 4  # read, latch, mask, final scan cycle


def _ceil_div(a, b):
    return -(-a // b)


def _nnz_rows(words: np.ndarray, lanes: int) -> np.ndarray:
    """words [C, ...] -> non-zero count per row of `lanes` channels: [ceil(C/lanes), ...]."""
    c = words.shape[0]
    groups = _ceil_div(c, lanes)
    padded = np.zeros((groups * lanes,) + words.shape[1:], dtype=np.int64)
    padded[:c] = words != 0
    return padded.reshape((groups, lanes) + words.shape[1:]).sum(axis=1)


def _conv_cost(row_cost: np.ndarray, stride: int, out_hw) -> np.ndarray:
    """Σ over the 3×3 taps of each output position; taps outside the map cost 1. row_cost [H, W]."""
    h, w = row_cost.shape
    padded = np.ones((h + 2, w + 2), dtype=np.int64)
    padded[1:-1, 1:-1] = row_cost
    ho, wo = out_hw
    total = np.zeros((ho, wo), dtype=np.int64)
    for ky in range(3):
        for kx in range(3):
            total += padded[ky:ky + stride * ho:stride, kx:kx + stride * wo:stride]
    return total


def layer_cycles(model: IntModel, trace: dict, image: int, lanes: int) -> dict[str, int]:
    """Cycles per engine layer for one image of a golden trace (keys as in the layer table)."""
    T, P = model.T, lanes
    C, N, d, heads = model.C, model.tokens, model.d, model.heads
    G = _ceil_div(C, P)
    cyc: dict[str, int] = {}

    def words(key):  # [C, ...] T-bit words of one image
        return pack_words(trace[key][:, image])

    stages = model.stage_shapes
    S = len(stages)
    for i, (cin, cout, h, w) in enumerate(stages):
        gout = _ceil_div(cout, P)
        epilogue = DRAIN + T + 3 if i == S - 1 else DRAIN + T + 2
        if i == 0:
            # rows are pixels: one per input channel; scan = popcount(pixel) + 1
            px = trace["_pixels"][image]                                  # [Cin, H, W]
            pop = np.zeros(px.shape, dtype=np.int64)
            for b in range(model.input_bits):
                pop += (px >> b) & 1
            row_cost = (ROW_FIXED + pop).sum(axis=0)
        else:
            src = f"tok{i}.pooled" if model.stages[i]["pool"] else f"tok{i-1}.spikes"
            if model.stages[i]["pool"]:
                prev = trace[f"tok{i-1}.spikes"]
                hi, wi = prev.shape[-2:]
                pool_cost = _conv_cost(np.full((hi, wi), 2, dtype=np.int64), 2, (h, w))
                gin = _ceil_div(cin, P)
                cyc[f"tok{i}.pool"] = 2 + gin * int((2 + pool_cost + 1).sum())
            nnz = _nnz_rows(words(src), P)                               # [Gin, H, W]
            row_cost = (ROW_FIXED + nnz).sum(axis=0)
        per_pos = _conv_cost(row_cost, 1, (h, w))
        cyc[f"tok{i}"] = 2 + gout * int((2 + per_pos + epilogue).sum())

    def linear(key, src, cout, to_stream):
        nnz = _nnz_rows(words(src), P)                                    # [Gin, N]
        per_pos = (ROW_FIXED + nnz).sum(axis=0)
        epilogue = DRAIN + T + 3 if to_stream else DRAIN + T + 2
        cyc[key] = 2 + _ceil_div(cout, P) * int((2 + per_pos + epilogue).sum())

    stream_lif = 2 + N * G * (2 + T + 3 + 1)
    for j in range(model.blocks):
        p = f"blk{j}."
        cyc[p + "ssa_lif"] = stream_lif
        for name in ("q", "k", "v"):
            linear(p + name, p + "ssa_spikes", C, False)
        cyc[p + "kv"] = 2 + G * d * (2 * N + DRAIN + 2)
        q = _nnz_rows(words(p + "q.spikes"), P)                           # [G, N]
        dp = d // P
        total = 0
        for g in range(G):
            h = g // dp
            total += int((2 + (ROW_FIXED + q[h * dp:(h + 1) * dp]).sum(axis=0) + DRAIN + T + 2).sum())
        cyc[p + "attn"] = 2 + total
        linear(p + "proj", p + "attn_spikes", C, True)
        cyc[p + "mlp_lif"] = stream_lif
        linear(p + "fc1", p + "mlp_spikes", model.mlp_hidden, False)
        linear(p + "fc2", p + "fc1.spikes", C, True)
    cyc["head.z"] = 2 + G * (N * T + DRAIN + 2)
    zw = analyze(model)["head.z"].bits
    z = trace["head.z"][image] & ((1 << zw) - 1)
    pop = np.zeros_like(z)
    for b in range(zw):
        pop += (z >> b) & 1
    K = model.num_classes
    cyc["head"] = 2 + _ceil_div(K, P) * (2 + int((ROW_FIXED + pop).sum()) + DRAIN + 1)
    cyc["argmax"] = K + 2
    return cyc


def exp_cycles(model: IntModel, trace: dict, image: int, lanes: int) -> int:
    """Whole-inference cycles of one image; `trace` is golden.inference.run(..., trace=True).trace with the
    pixels added under "_pixels" (see `trace_for`)."""
    return sum(layer_cycles(model, trace, image, lanes).values())


def trace_for(model: IntModel, images) -> dict:
    """The golden trace plus the pixels, as the cycle model needs them."""
    from golden.inference import run
    images = model.check_images(images)
    trace = run(model, images, trace=True).trace
    trace["_pixels"] = images
    return trace
