"""gen-rtl: IntModel -> build/<preset>/rtl/{core.v, manifest.json, weights.hex}.

The output is a pure function of the model and the options: same model, same lanes, byte-identical files.
"""
from __future__ import annotations

import hashlib
import json
import os

from golden.artifacts import atomic_write
from golden.intmodel import IntModel

from .engine import SpikeEngine, _pack, layer_field_widths, memory_layout, tap_position_width, timing
from .engine_plan import FIELDS, OP_NAMES, PARAM_FIELDS, build_plan, param_row_width

TOP = "spikingformer_core"
MANIFEST_VERSION = 2      # 2: the read-out port registers dbg_addr (timing.debug_read = 2 cycles)


def _write(path: str, text: str) -> None:
    atomic_write(path, text)      # temp file + rename, 0644; an unwritable folder is one FlowError


def verilog_of(plan) -> str:
    from amaranth.back import verilog
    # emit_src=False: no absolute source paths in the output, so it is byte-identical on every checkout
    return verilog.convert(SpikeEngine(plan), name=TOP, emit_src=False)


def manifest_of(model: IntModel, plan, verilog_text: str) -> dict:
    layers = [{"name": e["name"], "op": OP_NAMES[e["op"]], **{f: e[f] for f in FIELDS if f != "op"}}
              for e in plan.layers]
    fields = layer_field_widths(plan)
    return {
        "version": MANIFEST_VERSION,
        "top": TOP, "clock": "clk", "reset": "rst (synchronous, active high)",
        "model_sha256": model.sha256,
        "verilog_sha256": hashlib.sha256(verilog_text.encode()).hexdigest(),
        "config": model.config,
        "parameters": {"lanes": plan.lanes, "T": plan.T},
        "widths": plan.widths,
        "dims": plan.dims,
        "memory_map": {
            "act": {"width": plan.lanes * plan.T, "depth": plan.dims["act_rows"], "regions": plan.regions,
                    "row": "base + position * groups + group; lane l of a row holds channel group*lanes + l, "
                           "bits [l*T, (l+1)*T) = its T-bit spike word"},
            "weights": {"width": plan.lanes * plan.widths["weight"], "depth": plan.dims["weight_rows"]},
            "params": {"width": param_row_width(plan.lanes, plan.widths), "fields": list(PARAM_FIELDS),
                       "depth": plan.dims["param_rows"]},
            "stream": {"width": plan.lanes * plan.widths["stream"], "depth": plan.dims["stream_rows"],
                       "row": "(token * groups + group) * T + t"},
            "kv": {"width": plan.lanes * plan.T * plan.widths["kv"], "depth": plan.dims["kv_rows"]},
            "z": {"width": plan.lanes * plan.widths["z"], "depth": plan.dims["z_rows"]},
            "image": {"width": plan.widths["pixel"], "depth": plan.dims["pixels"]},
        },
        "layer_table": layers,
        # the layer-table fields' widths as the core decodes them, and the tap positions' width (the output loop's
        # and tap walker's counters and in-bounds compares are this wide; the resource model reads them)
        "layer_fields": {"widths": fields, "position_width": tap_position_width(fields)},
        # physical memories as built (column slices, weight-ROM banks, ports) and the schedule's cycle costs: the
        # resource model (hls_models/resources.py) and the cycle model (hls_models/engine_cycles.py) read these
        "memories": memory_layout(plan, sum(fields.values())),
        "timing": timing(plan.T),
        "ports": {
            "in_valid/in_ready/in_data": "pixel load while idle, channel-row-column order",
            "start": "pulse to run one inference", "busy": "high while running",
            "done": "high from the end of an inference until the next start",
            "pred_class": "argmax of the logits, ties to the lowest index",
            "logit_sel/logit": "combinational logit readout", "cycles": "cycles of the last inference",
            "overflow": "sticky: a value left its analysed width (never expected)",
            "dbg_addr/dbg_data": "activation RAM read port, timing.debug_read cycles latency",
        },
    }


def generate(model: IntModel, lanes: int, out_dir: str) -> dict:
    """Write the core for `model` into out_dir and return the manifest."""
    plan = build_plan(model, lanes)
    text = verilog_of(plan)
    manifest = manifest_of(model, plan, text)
    _write(os.path.join(out_dir, "core.v"), text)
    width = plan.widths["weight"]
    digits = (plan.lanes * width + 3) // 4
    _write(os.path.join(out_dir, "weights.hex"),
           "".join(f"{_pack(row, width):0{digits}x}\n" for row in plan.weight_rows))
    _write(os.path.join(out_dir, "manifest.json"), json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest
