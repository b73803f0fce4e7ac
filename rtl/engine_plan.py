"""The engine's plan: layer table, memory map, ROM images and widths, derived from an IntModel.

Pure Python over golden/ (numpy). `rtl/engine/` turns a plan into hardware; gen-rtl writes it as the manifest.
Every address in the layer table is a row index of one memory; rows hold P lanes (P = `lanes`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from golden import graph
from golden import primitives as P
from flowerrors import FlowError
from golden.intmodel import IntModel
from golden.widths import analyze, check_hw_limits, signed_bits

# Layer opcodes. The controller's loop nest is shared; the opcode picks the row source, the event target and the
# epilogue (see docs/engine.md).
OP_CONV_IN, OP_ACC, OP_POOL, OP_STREAM_LIF, OP_KV, OP_ATTN, OP_HEAD_Z, OP_HEAD = range(8)
OP_NAMES = ["conv_in", "acc", "pool", "stream_lif", "kv", "attn", "head_z", "head"]

# Field names of a layer-table entry, in packing order. All are unsigned except a0 (see engine.py).
FIELDS = ["op", "to_stream", "stream_init", "Ho", "Wo", "Hi", "Wi", "k3", "s2", "Gin", "Gout",
          "a0", "PS", "RS", "GS", "XSTEP", "YSTEP", "hoff", "out_base", "w_base", "R", "WTS", "WGS", "p_base",
          "k_base", "v_base", "N", "heads", "d", "DP"]


def _ceil_div(a, b):
    return -(-a // b)


# Per output channel, the power of two common to all of its weights (at most 2^LANE_SHIFT_MAX) is taken out of the
# weight ROM and put back by the addend shifter (a per-lane shift from the layer's parameter row). The layers that
# write the residual stream carry their channel's scale alignment in their weights (up to 2 more bits than the
# trained 8); without it the whole ROM, one width for all layers, would be as wide as those few layers need.
LANE_SHIFT_MAX = 3


def common_shift(values) -> int:
    """The largest s <= LANE_SHIFT_MAX with every value a multiple of 2^s (0 for an all-zero row)."""
    nz = [abs(int(v)) for v in values if v]
    s = 0
    while nz and s < LANE_SHIFT_MAX and all(v % (2 << s) == 0 for v in nz):
        s += 1
    return s


# A parameter row: per lane a bias, a threshold and a lane shift, each field's P lanes side by side, in this order.
PARAM_FIELDS = ("bias", "theta", "lane_shift")


def param_row_width(lanes: int, widths: dict) -> int:
    return lanes * sum(widths[f] for f in PARAM_FIELDS)


@dataclass
class Plan:
    lanes: int
    T: int
    layers: list = field(default_factory=list)      # dicts with FIELDS + "name"
    regions: dict = field(default_factory=dict)     # trace key -> {"base", "channels", "positions", "groups", "shape"}
    act_rows: int = 0
    weight_rows: list = field(default_factory=list)  # list of P-lists of ints
    param_rows: list = field(default_factory=list)   # list of (bias P-list, theta P-list, lane shift P-list)
    widths: dict = field(default_factory=dict)
    dims: dict = field(default_factory=dict)


def build_plan(model: IntModel, lanes: int) -> Plan:
    """Lay out the model for an engine with `lanes` output-channel lanes."""
    if lanes < 1 or lanes & (lanes - 1):
        raise FlowError(f"--lanes {lanes} is not a power of two; use 1, 2, 4, 8, 16, 32 or 64.")
    if model.d % lanes and lanes % model.d:
        raise FlowError(f"--lanes {lanes} and the head dimension {model.d} do not divide one another; a lane group "
                        f"holds part of one head or whole heads, so use lanes that divide {model.d} or a multiple "
                        f"of it.")
    ranges = check_hw_limits(model)
    Pl, T, a = lanes, model.T, model.arrays
    plan = Plan(lanes=Pl, T=T)
    C, N, d, heads = model.C, model.tokens, model.d, model.heads
    G = _ceil_div(C, Pl)

    def region(key, channels, h, w):
        g = _ceil_div(channels, Pl)
        plan.regions[key] = {"base": plan.act_rows, "channels": channels, "positions": h * w, "groups": g,
                             "shape": [h, w]}
        plan.act_rows += h * w * g
        return plan.regions[key]["base"]

    def weights_rows(w2d_by_group):
        base = len(plan.weight_rows)
        plan.weight_rows.extend(w2d_by_group)
        return base

    def conv_weight_rows(w, shifts):
        # row index = g·R + tap·Cin + cin, lanes are output channels g·P .. g·P+P-1; weights divided by 2^shift
        cout, cin = w.shape[:2]
        w = w // (np.int64(1) << np.asarray(shifts, dtype=np.int64)).reshape((-1,) + (1,) * (w.ndim - 1))
        rows = []
        for g in range(_ceil_div(cout, Pl)):
            for tap in range(w.shape[2] * w.shape[3] if w.ndim == 4 else 1):
                for ci in range(cin):
                    row = []
                    for lane in range(Pl):
                        co = g * Pl + lane
                        if co >= cout:
                            row.append(0)
                        elif w.ndim == 4:
                            row.append(int(w[co, ci, tap // 3, tap % 3]))
                        else:
                            row.append(int(w[co, ci]))
                    rows.append(row)
        return rows

    def param_rows(bias, theta, count, shifts=None):
        base = len(plan.param_rows)
        for g in range(_ceil_div(count, Pl)):
            bs, ts, ss = [], [], []
            for lane in range(Pl):
                c = g * Pl + lane
                # padding lanes: zero weights and bias, threshold 1, so they never fire and never disturb the stream
                bs.append(int(bias[c]) if bias is not None and c < count else 0)
                ts.append(int(theta[c]) if theta is not None and c < count else 1)
                ss.append(int(shifts[c]) if shifts is not None and c < count else 0)
            plan.param_rows.append((bs, ts, ss))
        return base

    def entry(name, op, **kw):
        e = {f: 0 for f in FIELDS}
        e.update(op=op, name=name, **kw)
        plan.layers.append(e)
        return e

    def conv_fields(hi, wi, ho, wo, k3, s2, gin, ps, gs, in_base):
        pad = 1 if k3 else 0
        rs = wi * ps
        return dict(Hi=hi, Wi=wi, Ho=ho, Wo=wo, k3=k3, s2=s2, Gin=gin, PS=ps, RS=rs, GS=gs,
                    XSTEP=(2 if s2 else 1) * ps, YSTEP=(2 if s2 else 1) * rs, a0=in_base - pad * rs - pad * ps)

    def tok_fields(src_key):
        src = plan.regions[src_key]
        return conv_fields(N, 1, N, 1, 0, 0, src["groups"], src["groups"], 1, src["base"])

    def out_region(step, h, w):
        return region(step.spikes, step.cout, h, w) if step.spikes else 0

    def weight_fields(step):
        w = a[step.name + ".w"]
        shifts = [common_shift(w[co].ravel()) for co in range(step.cout)]
        return dict(Gout=_ceil_div(step.cout, Pl), w_base=weights_rows(conv_weight_rows(w, shifts)),
                    p_base=param_rows(a[step.name + ".b"], a[step.theta] if step.theta else None, step.cout, shifts))

    # One layer-table entry (two for a pooled stage, the attention and the head) per step of the layer graph;
    # activation regions are laid out in the graph's order.
    for step in graph.steps(model):
        if step.op in ("pixel_conv", "spike_conv"):
            h, w = step.shape
            if step.op == "pixel_conv":      # rows are pixels: one weight group, the bit-serial first layer
                op, wgs, fields = OP_CONV_IN, 1, conv_fields(h, w, h, w, 1, 0, step.cin, 1, h * w, 0)
            else:
                src = plan.regions[step.src]
                if step.pool:
                    hi, wi = src["shape"]
                    pbase = region(step.pooled, step.cin, h, w)
                    entry(step.name + ".pool", OP_POOL, out_base=pbase, Gout=src["groups"], hoff=1,
                          **conv_fields(hi, wi, h, w, 1, 1, 1, src["groups"], 1, src["base"]))
                    src = plan.regions[step.pooled]
                fields = conv_fields(h, w, h, w, 1, 0, src["groups"], src["groups"], 1, src["base"])
                op, wgs = OP_ACC, Pl
            entry(step.name, op, to_stream=int(step.stream_init), stream_init=int(step.stream_init),
                  out_base=out_region(step, h, w), R=9 * step.cin, WTS=step.cin, WGS=wgs, **weight_fields(step),
                  **fields)
        elif step.op == "spike_linear":
            entry(step.name, OP_ACC, to_stream=int(step.stream is not None), out_base=out_region(step, N, 1),
                  R=step.cin, WTS=step.cin, WGS=Pl, **weight_fields(step), **tok_fields(step.src))
        elif step.op == "stream_lif":
            entry(step.name + "_lif", OP_STREAM_LIF, out_base=out_region(step, N, 1), Gout=G, Ho=N, Wo=1,
                  p_base=param_rows(None, a[step.theta], C))
        elif step.op == "attention":
            p = step.name[:-len("attn")]
            dp = max(1, d // Pl)         # lane groups per head (1 when a group holds whole heads)
            entry(p + "kv", OP_KV, k_base=plan.regions[p + "k.spikes"]["base"],
                  v_base=plan.regions[p + "v.spikes"]["base"], N=N, heads=heads, d=d, DP=dp, Gout=G)
            # each output group reads the Q rows of its head (dp rows), or, when it holds whole heads, its own Q row
            entry(step.name, OP_ATTN, out_base=out_region(step, N, 1), Gout=G, w_base=0, R=d, WTS=0, WGS=Pl,
                  hoff=2 if Pl <= d else 1, DP=dp, p_base=param_rows(None, np.full(C, P.attn_theta(T)), C),
                  **{**tok_fields(step.src), "Gin": dp})
        elif step.op == "head":
            entry("head.z", OP_HEAD_Z, Gout=G, N=N, RS=G * T)
            entry("head", OP_HEAD, Ho=1, Wo=1, Hi=1, Wi=1, k3=0, Gin=C, PS=0, RS=0, GS=1, a0=0, R=C, WTS=C,
                  WGS=1, **weight_fields(step))
        else:
            raise AssertionError(f"the engine plan has no layout for the layer graph's op {step.op!r}")
    K = model.num_classes
    hw = a["head.w"]

    # ----- widths (all from golden's interval analysis; nothing can overflow)
    acc_keys = [k for k in ranges if k.endswith(".acc") or k.endswith(".y") or k.endswith(".kv")]
    zr = ranges["head.z"]
    zw = zr.bits
    head_bound = int(np.abs(a["head.b"]).max()) + int(np.abs(hw).sum(1).max()) * (1 << zw)
    stream_keys = [k for k in ranges if k.startswith("stream") or "stream_" in k]
    bias_all = [v for bs, _, _ in plan.param_rows for v in bs]
    theta_all = [v for _, ts, _ in plan.param_rows for v in ts]
    shift_all = [v for _, _, ss in plan.param_rows for v in ss]
    wall = [v for row in plan.weight_rows for v in row] or [0]
    widths = {
        "weight": signed_bits(min(wall), max(wall)),
        "acc": max([ranges[k].bits for k in acc_keys + stream_keys + ["head.z"]] +
                   [signed_bits(-head_bound, head_bound), signed_bits(min(bias_all), max(bias_all))]),
        # timesteps 1 .. T - 1 of the accumulators never hold the head's sums (Z and the logits use timestep 0)
        "acc_rest": max(ranges[k].bits for k in acc_keys + stream_keys),
        "membrane": max(r.bits for k, r in ranges.items() if k.endswith(".membrane")) + 1,
        "stream": max(ranges[k].bits for k in stream_keys),
        "z": zw,
        "kv": signed_bits(0, N),
        "bias": signed_bits(min(bias_all), max(bias_all)),
        "theta": signed_bits(0, max(theta_all)),
        "lane_shift": max(1, max(shift_all).bit_length()),
        "pixel": model.input_bits,
        "logit": ranges["logits"].bits,
    }
    plan.widths = widths
    plan.dims = {"C": C, "N": N, "G": G, "d": d, "heads": heads, "K": K, "T": T, "lanes": Pl,
                 "pixels": int(np.prod(model.input_shape)), "act_rows": plan.act_rows,
                 "weight_rows": len(plan.weight_rows), "param_rows": len(plan.param_rows),
                 "stream_rows": N * G * T, "kv_rows": G * d, "z_rows": G, "layers": len(plan.layers)}
    return plan
