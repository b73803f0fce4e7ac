"""Exact cycle model of the generated core (rtl/engine/), from the IntModel, the golden run of the images
(golden.inference.run(model, images, trace=True): its trace and the images it ran on) and the core's manifest
(build/<preset>/rtl/manifest.json).

Written from the engine's schedule, not from its code: the tests compare it with the RTL's cycle counter on every
simulated image. Every fixed cost is read from the manifest's `timing` section, which the generator writes next to
the hardware it describes (one source of truth); this module only knows how the schedule composes them:

  layer fetch                         layer_fetch
  output (position, lane group)       the layer's first: output_start + row_fill + Σ_taps cost(tap); every later
                                      one max(output_spacing, output_seam + Σ_taps cost(tap)) (its rows follow the
                                      previous output's through the row pipeline, its epilogue runs beside the
                                      next output's scan), and the layer ends layer_tail[lif | stream_add |
                                      head_write] after its last output's scan
    tap out of the image              tap_outside (one bubble through the row pipeline)
    tap in the image                  Σ_rows max(row_min, nnz(row))   (the next rows are read while one is scanned)
  pooling output                      output_start + Σ_taps (pool_tap_outside | Σ_rows pool_row) + pool_write
  stream LIF, per layer               stream_lif_fixed + stream_lif_output per output (back to back)
  Kᵀ·V, per (lane group, K row block) kv_block_token·N + kv_block_fixed
       per (lane group, K channel)    max(row_min, tokens whose K word is non-zero) + kv_channel_fixed
  head Z, per lane group              head_z_value·N·T + head_z_group_fixed
  argmax                              argmax_class·K + argmax_fixed
nnz(row) counts the non-zero T-bit words of the row's P channels (spike layers), the set bits of the pixel
(first conv), or the set bits of Z_c in two's complement (head): the event-driven part.
"""
from __future__ import annotations

import numpy as np

from golden import graph
from golden.errors import ArtifactError
from golden.inference import InferenceResult, run
from golden.intmodel import IntModel
from golden.primitives import pack_words
from golden.widths import analyze


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


def _trace_and_pixels(golden: InferenceResult) -> tuple[dict, np.ndarray]:
    """The layer values and the input pixels of a golden run (golden.inference.run(..., trace=True))."""
    if not golden.trace or golden.images is None:
        raise ValueError("the cycle model needs a golden run with trace=True")
    return golden.trace, golden.images


def _layer_work(model: IntModel, golden: InferenceResult, image: int, P: int,
                widths: dict | None = None) -> list[dict]:
    """The work of every engine layer for one image, in layer-table order: for the loop-nest layers the per-output
    arrays of per-row event counts; for the fixed-schedule layers their sizes. `widths`: golden.widths.analyze(model)
    when a caller loops over images (it is the same for all, and costs more than the rest of one image)."""
    trace, pixels = _trace_and_pixels(golden)
    T = model.T
    C, N, d, heads = model.C, model.tokens, model.d, model.heads
    G = _ceil_div(C, P)
    layers = []

    def words(key):  # [C, ...] T-bit words of one image
        return pack_words(trace[key][:, image])

    def conv_rows(nnz, stride, out_hw):
        """nnz [Gin, H, W] -> per output position the event count of each of its 9·Gin rows, or -1 for a tap
        outside the map: [Ho, Wo, 9, Gin]."""
        gin, h, w = nnz.shape
        padded = np.full((gin, h + 2, w + 2), -1, dtype=np.int64)
        padded[:, 1:-1, 1:-1] = nnz
        ho, wo = out_hw
        taps = [padded[:, ky:ky + stride * ho:stride, kx:kx + stride * wo:stride] for ky in range(3) for kx in range(3)]
        return np.stack(taps).transpose(2, 3, 0, 1)

    # the layer graph's steps in order, as the engine's layer table lays them out (rtl/engine_plan.py)
    for step in graph.steps(model):
        kind = "stream_add" if step.stream else "lif"
        if step.op in ("pixel_conv", "spike_conv"):
            if step.op == "pixel_conv":
                # rows are pixels, one per input channel; the events are the pixel's set bits
                px = pixels[image]                              # [Cin, H, W]
                nnz = np.zeros(px.shape, dtype=np.int64)
                for b in range(model.input_bits):
                    nnz += (px >> b) & 1
            else:
                if step.pool:
                    hi, wi = trace[step.src].shape[-2:]
                    rows = conv_rows(np.zeros((1, hi, wi), dtype=np.int64), 2, step.shape)
                    layers.append({"name": step.name + ".pool", "kind": "pool", "groups": _ceil_div(step.cin, P),
                                   "rows": rows})
                nnz = _nnz_rows(words(step.pooled or step.src), P)        # [Gin, H, W]
            layers.append({"name": step.name, "kind": kind, "groups": _ceil_div(step.cout, P),
                           "rows": conv_rows(nnz, 1, step.shape)})
        elif step.op == "spike_linear":
            nnz = _nnz_rows(words(step.src), P)                           # [Gin, N]
            layers.append({"name": step.name, "kind": kind, "groups": _ceil_div(step.cout, P),
                           "rows": nnz.T[:, None, :]})                     # [N, 1 tap, Gin]
        elif step.op == "stream_lif":
            layers.append({"name": step.name + "_lif", "kind": "stream_lif", "outputs": N * G})
        elif step.op == "attention":
            p = step.name[:-len("attn")]
            # Kᵀ·V: per (lane group, K channel i) the tokens whose K word of channel i is non-zero in a head of
            # the group
            k_nz = _nnz_rows(words(p + "k.spikes"), 1)                    # [C, N]: K word non-zero
            tokens = []                                                   # per lane group: [d] tokens named
            for g in range(G):
                heads_of_g = range(g * P // d, g * P // d + 1) if P <= d else \
                    range(g * P // d, min(heads, (g + 1) * P // d))
                tokens.append(np.any([k_nz[h * d:(h + 1) * d] for h in heads_of_g], axis=0).sum(axis=1))
            layers.append({"name": p + "kv", "kind": "kv", "blocks": G * (_ceil_div(d, P) if P <= d else 1),
                           "tokens": np.stack(tokens), "events": int(np.sum(tokens))})
            q = _nnz_rows(words(step.src), P)                              # [G, N]
            if P <= d:
                # lane group g reads the Q rows of its head: per token the dp rows of head g // dp
                dp = d // P
                rows = np.stack([q[(g // dp) * dp:(g // dp + 1) * dp].T[:, None, :] for g in range(G)])
                rows = rows.reshape(G * N, 1, dp)
            else:
                rows = q.reshape(G * N, 1, 1)                              # whole heads: the group's own Q row
            layers.append({"name": step.name, "kind": "lif", "groups": 1, "rows": rows})
        elif step.op == "head":
            layers.append({"name": "head.z", "kind": "head_z", "groups": G, "values": N * T})
            zw = (widths or analyze(model))["head.z"].bits
            z = trace["head.z"][image] & ((1 << zw) - 1)
            pop = np.zeros_like(z)
            for b in range(zw):
                pop += (z >> b) & 1
            layers.append({"name": "head", "kind": "head_write", "groups": _ceil_div(step.cout, P),
                           "rows": pop.reshape(1, 1, -1)})                  # one output, one tap, C rows
        else:
            raise AssertionError(f"the cycle model has no schedule for the layer graph's op {step.op!r}")
    K = model.num_classes
    layers.append({"name": "argmax", "kind": "argmax", "classes": K})
    return layers


class _Timing(dict):
    """manifest.json -> timing, refusing in one sentence a figure that an older gen-rtl did not write."""

    def __missing__(self, key):
        raise ArtifactError(f"the core's manifest.json has no timing figure {key!r} (an older gen-rtl wrote it); "
                            f"rerun `python flow.py gen-rtl` with the same --preset and --lanes.")


def layer_cycles(model: IntModel, golden: InferenceResult, image: int, manifest: dict,
                 widths: dict | None = None) -> dict[str, int]:
    """Cycles per engine layer for one image of a golden run (keys as in the layer table), for the core that
    `manifest` (gen-rtl's manifest.json, as a dict) describes (`widths`: see _layer_work)."""
    tm = _Timing(manifest["timing"])
    P = int(manifest["parameters"]["lanes"])
    cyc: dict[str, int] = {}
    for layer in _layer_work(model, golden, image, P, widths):
        kind, name = layer["kind"], layer["name"]
        if kind == "argmax":
            cyc[name] = tm["argmax_class"] * layer["classes"] + tm["argmax_fixed"]
            continue
        total = tm["layer_fetch"]
        if kind == "stream_lif":
            total += layer["outputs"] * tm["stream_lif_output"] + tm["stream_lif_fixed"]
        elif kind == "kv":
            # per (lane group, K row block) the K rows of all tokens; per K channel the named tokens
            total += layer["blocks"] * (tm["kv_block_token"] * model.tokens + tm["kv_block_fixed"])
            total += int((np.maximum(tm["row_min"], layer["tokens"]) + tm["kv_channel_fixed"]).sum()) + tm["kv_tail"]
        elif kind == "head_z":
            total += layer["groups"] * (tm["head_z_value"] * layer["values"] + tm["head_z_group_fixed"])
        else:
            rows = layer["rows"]                                         # [outputs..., taps, rows per tap]
            if kind == "pool":
                tap = np.where(rows[..., 0] < 0, tm["pool_tap_outside"], rows.shape[-1] * tm["pool_row"])
                per_output = tm["output_start"] + tm["epilogue"]["pool_write"] + tap.sum(axis=-1)
                total += layer["groups"] * int(per_output.sum())
            else:
                # the outputs' rows follow each other through the row pipeline (a seam between two outputs), an
                # output's epilogue overlaps the next output's scan: each output after the first costs at least
                # the spacing, and the last epilogue ends before the next layer starts
                tap = np.where(rows[..., 0] < 0, tm["tap_outside"],
                               np.maximum(tm["row_min"], rows).sum(axis=-1))
                scan = tap.sum(axis=-1).reshape(-1)            # per (position), for each of the layer's groups
                later = int(np.maximum(tm["output_spacing"], tm["output_seam"] + scan).sum()) * layer["groups"]
                first = tm["output_start"] + tm["row_fill"] + int(scan[0])
                total += later - max(tm["output_spacing"], tm["output_seam"] + int(scan[0])) + first \
                    + tm["layer_tail"][kind]
        cyc[name] = total
    return cyc


def layer_events(model: IntModel, golden: InferenceResult, image: int, lanes: int,
                 widths: dict | None = None) -> dict[str, int]:
    """Events per engine layer for one image: the event bound in cycles (one cycle per event entering the lanes,
    every fixed cost zero; docs/engine.md). An event is a non-zero input word (or a set pixel / Z bit in the
    bit-serial layers) times the output lane groups that read it, and in Kᵀ·V a token whose K word is non-zero
    (its V row then enters the lanes)."""
    ev: dict[str, int] = {}
    for layer in _layer_work(model, golden, image, lanes, widths):
        if "rows" in layer and layer["kind"] != "pool":
            ev[layer["name"]] = layer["groups"] * int(np.clip(layer["rows"], 0, None).sum())
        else:
            ev[layer["name"]] = layer.get("events", 0)
    return ev


def exp_cycles(model: IntModel, golden: InferenceResult, image: int, manifest: dict,
               widths: dict | None = None) -> int:
    """Whole-inference cycles of image `image` of `golden` (golden.inference.run(model, images, trace=True)) on the
    core of `manifest`."""
    return sum(layer_cycles(model, golden, image, manifest, widths).values())


def cycle_table(model: IntModel, images, manifest: dict, golden: InferenceResult | None = None) -> dict:
    """Per engine layer and in total, over `images` on the core of `manifest`: mean cycles, mean event bound
    (layer_events) and their ratio, plus the per-image totals' mean, min and max (`golden`: run(model, images,
    trace=True) when already at hand)."""
    golden = golden if golden is not None else run(model, images, trace=True)
    lanes = int(manifest["parameters"]["lanes"])
    widths = analyze(model)
    cyc = [layer_cycles(model, golden, i, manifest, widths) for i in range(len(golden.images))]
    ev = [layer_events(model, golden, i, lanes, widths) for i in range(len(golden.images))]
    per_layer = {}
    for name in cyc[0]:
        c, e = float(np.mean([x[name] for x in cyc])), float(np.mean([x[name] for x in ev]))
        per_layer[name] = {"cycles": round(c, 1), "events": round(e, 1), "ratio": round(c / e, 2) if e else None}
    totals, bounds = [sum(x.values()) for x in cyc], [sum(x.values()) for x in ev]
    return {"lanes": lanes, "images": len(cyc), "per_layer": per_layer,
            "total": {"cycles": round(float(np.mean(totals)), 1), "events": round(float(np.mean(bounds)), 1),
                      "ratio": round(float(np.mean(totals)) / float(np.mean(bounds)), 2),
                      "cycles_min": int(min(totals)), "cycles_max": int(max(totals))}}


def format_cycle_table(table: dict) -> str:
    """The cycle table as aligned text lines (what `make bench` prints)."""
    lines = [f"{'layer':16s} {'cycles':>9s} {'event bound':>11s} {'ratio':>6s}"]
    for name, row in list(table["per_layer"].items()) + [("total", table["total"])]:
        ratio = f"{row['ratio']:.2f}" if row["ratio"] else "-"
        lines.append(f"{name:16s} {row['cycles']:9.1f} {row['events']:11.1f} {ratio:>6s}")
    return "\n".join(lines)
