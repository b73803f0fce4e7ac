"""Energy per inference by the paper's method, and the synaptic operations the event-driven core really executes.

The paper's method (docs/model.md, "Energy"): a weight layer whose input is strictly 0/1 costs
E_AC × (dense synaptic ops × T) × (its input's firing rate); the first conv (pixels in) and the head (real-valued
stream in) cost E_MAC × dense ops, counted once because their input is the same at every timestep; the SSA of a block
costs T · heads · N · d² · (min(fr_K, fr_V) + fr_Q) ACs. E_AC = 0.9 pJ, E_MAC = 4.6 pJ (45 nm).

Firing rates come from golden.inference traces of real images. The core's own count (`executed_sops`) is exact
instead of a rate estimate: every input spike of a spike layer adds its weight into each output that really sees it
(borders of a 3×3 conv see fewer), KᵀV adds one for every (K, V) spike pair on a token, and Q·KV adds a KV row of d
values for every Q spike.
"""
from __future__ import annotations

import numpy as np

from golden import graph, inference
from golden.intmodel import IntModel

E_AC_PJ = 0.9
E_MAC_PJ = 4.6


def weight_layers(model: IntModel) -> list[dict]:
    """Every weight layer with its dense synaptic ops per timestep (per image) and the trace key of its input, in the
    order of the layer graph (golden/graph.py).

    `kind` is "MAC" for the non-spike layers (first conv, head), "AC" for spike-input layers, "SSA" for attention.
    """
    layers = []
    for step in graph.steps(model):
        if step.op == "stream_lif":
            continue
        if step.op == "attention":
            p = step.name[:-len("attn")]
            layers.append({"name": p + "ssa", "kind": "SSA", "input": None,
                           "dense": model.heads * model.tokens * model.d ** 2, "fan_out": None, "conv": False})
            continue
        conv = step.op in ("pixel_conv", "spike_conv")
        positions = int(np.prod(step.shape)) if step.shape else 1
        layers.append({"name": step.name, "kind": "AC" if step.spike_input else "MAC",
                       "input": (step.pooled or step.src) if step.spike_input else None,
                       "dense": step.cout * step.cin * (9 if conv else 1) * positions,
                       "fan_out": None if step.op == "head" else step.cout, "conv": conv})
    return layers


def _conv_reach(h: int, w: int) -> np.ndarray:
    """How many outputs of a 3×3, pad-1 conv each input position feeds (9 inside, 6 on edges, 4 in corners)."""
    ry = np.array([min(y + 1, h - 1) - max(y - 1, 0) + 1 for y in range(h)])
    rx = np.array([min(x + 1, w - 1) - max(x - 1, 0) + 1 for x in range(w)])
    return ry[:, None] * rx[None, :]


def firing_rates(trace: dict) -> dict[str, float]:
    """Mean firing rate (spikes per neuron per timestep) of every spike tensor in a golden trace."""
    keys = [k for k in trace if k.endswith(("spikes", "pooled"))]
    return {k: float(np.mean(trace[k])) for k in keys}


def estimate(model: IntModel, images, trace: dict | None = None) -> dict:
    """Energy per inference (paper method) and the core's exact executed SOPs, averaged over `images`."""
    if trace is None:
        trace = inference.run(model, images, trace=True).trace
    batch = trace["head.z"].shape[0]
    T = model.T
    rates = firing_rates(trace)
    rows = []
    for layer in weight_layers(model):
        row = {"name": layer["name"], "kind": layer["kind"], "dense_ops": layer["dense"] * (T if layer["kind"] != "MAC" else 1)}
        if layer["kind"] == "MAC":
            row.update(input_rate=None, ops=float(layer["dense"]), executed=float(layer["dense"]))
        elif layer["kind"] == "AC":
            s = trace[layer["input"]]
            fr = float(np.mean(s))
            row.update(input_rate=fr, ops=layer["dense"] * T * fr)
            if layer["conv"]:
                reach = _conv_reach(*s.shape[-2:])
                row["executed"] = float((s.sum(axis=(0, 2)) * reach).sum() * layer["fan_out"] / batch)
            else:
                row["executed"] = float(s.sum() * layer["fan_out"] / batch)
        else:  # SSA
            p = layer["name"][:-len("ssa")]
            fq, fk, fv = (rates[p + f"{x}.spikes"] for x in "qkv")
            row.update(input_rate=min(fk, fv) + fq, ops=layer["dense"] * T * (min(fk, fv) + fq))
            row["executed"] = _ssa_executed(trace, p, model.heads) / batch
        row["energy_pj"] = row["ops"] * (E_MAC_PJ if layer["kind"] == "MAC" else E_AC_PJ)
        rows.append(row)
    ac = sum(r["ops"] for r in rows if r["kind"] != "MAC")
    mac = sum(r["ops"] for r in rows if r["kind"] == "MAC")
    return {
        "layers": rows,
        "ac_ops": ac,
        "mac_ops": mac,
        "energy_pj": E_AC_PJ * ac + E_MAC_PJ * mac,
        "energy_uj": (E_AC_PJ * ac + E_MAC_PJ * mac) * 1e-6,
        "executed_sops": sum(r["executed"] for r in rows if r["kind"] != "MAC"),
        "dense_sops": sum(r["dense_ops"] for r in rows if r["kind"] != "MAC"),
        "firing_rates": rates,
        "images": int(batch),
        "constants_pj": {"E_AC": E_AC_PJ, "E_MAC": E_MAC_PJ},
    }


def _ssa_executed(trace: dict, prefix: str, heads: int) -> float:
    q, k, v = (trace[prefix + f"{x}.spikes"].astype(np.int64) for x in "qkv")
    t, b, c, n = q.shape
    d = c // heads
    kh, vh, qh = (a.reshape(t, b, heads, d, n) for a in (k, v, q))
    kv_adds = (kh.sum(axis=3) * vh.sum(axis=3)).sum()   # per token: (#K spikes) × (#V spikes) pairs
    y_adds = qh.sum() * d                                 # each Q spike adds a KV row of d values
    return float(kv_adds + y_adds)


def core_efficiency(energy: dict, cycles: float | None, fmax_mhz: float | None) -> dict:
    """SOPs per cycle and, with a clock, the core's SOP rate and latency."""
    out = {"executed_sops": energy["executed_sops"], "cycles": cycles}
    if cycles:
        out["sops_per_cycle"] = energy["executed_sops"] / cycles
        if fmax_mhz:
            out["latency_us"] = cycles / fmax_mhz
            out["gsops"] = energy["executed_sops"] / cycles * fmax_mhz * 1e-3
    return out
