"""The whole board top (SimBoard: HostLink + the generated core, no PLL) under Verilator, driven through a
pseudo-terminal by host commands (sim/tb_board.py). Used by sim/test_board.py.

Simulation clock: 100 MHz nominal (10 ns), UART divisor 8 (12.5 Mbaud), link timeout 3,000 cycles: the real
board's divisor and 10 ms timeout would cost minutes of simulated idle line per bad frame.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from golden.artifacts import atomic_write

SIM_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(SIM_DIR)

SIM_CLOCK_HZ = 100_000_000
SIM_DIVISOR = 8
SIM_BAUD = SIM_CLOCK_HZ // SIM_DIVISOR
SIM_TIMEOUT_CYCLES = 3000


def board_verilog(rtl_dir: str, out_dir: str) -> str:
    """Write the SimBoard top for the core in rtl_dir (core.v + manifest.json) to out_dir/board_top.v."""
    from amaranth.back import verilog

    from rtl.board.top import BOARD_TOP, SimBoard
    manifest = json.loads(Path(rtl_dir, "manifest.json").read_text())
    core = Path(rtl_dir, "core.v").read_text()
    text = verilog.convert(SimBoard(manifest, core, SIM_CLOCK_HZ, SIM_BAUD, SIM_TIMEOUT_CYCLES), name=BOARD_TOP,
                           emit_src=False)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "board_top.v")
    if not os.path.exists(path) or Path(path).read_text() != text:
        atomic_write(path, text)
    return path


def run_host_commands(rtl_dir: str, work_dir: str, commands: list[list[str]]) -> dict:
    """Build (cached by the Verilog's hash) and simulate the board top while `commands` run one after the other
    against its UART ("{port}" in an argument becomes the pseudo-terminal). Returns the bench's records."""
    from .runner import build_cocotb, run_cocotb_test
    work_dir = os.path.abspath(work_dir)
    top_v = board_verilog(rtl_dir, work_dir)
    # the core is copied beside the top so the cached build's sources keep their paths when rtl_dir is a new tmp dir
    core_v = os.path.join(work_dir, "core.v")
    core_text = Path(rtl_dir, "core.v").read_text()
    if not os.path.exists(core_v) or Path(core_v).read_text() != core_text:
        atomic_write(core_v, core_text)
    runner, build_dir = build_cocotb([core_v, top_v], "board_top", work_dir)
    results = os.path.join(work_dir, "host_records.json")
    if os.path.exists(results):
        os.remove(results)
    job = {"commands": commands, "divisor": SIM_DIVISOR, "timeout_cycles": SIM_TIMEOUT_CYCLES,
           "results": results, "cwd": ROOT}
    job_path = os.path.join(work_dir, "job.json")
    Path(job_path).write_text(json.dumps(job))
    run_cocotb_test(runner, build_dir, "tb_board", "board_top", work_dir, os.path.join(work_dir, "junit.xml"),
                env={"BOARD_JOB": job_path})
    if not os.path.exists(results):
        raise AssertionError(f"the board bench wrote no records; see {os.path.join(work_dir, 'junit.xml')}")
    return json.loads(Path(results).read_text())


def host_command(*args: str) -> list[str]:
    """`python flow.py ARGS` with this interpreter."""
    return [sys.executable, os.path.join(ROOT, "flow.py"), *args]
