"""Build the generated core under Verilator (cocotb_tools.runner) and run images through sim/tb_engine.py.

Decoding the dumped activation RAM into golden-layout traces lives here too, so the checker can hand both sides
to golden.compare.first_mismatch.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .runner import build_cocotb, run_cocotb_test


def build(verilog_path: str, build_root: str, waves: bool = False):
    """The core's cocotb build (cached by the Verilog's hash; the compile is the slow part on 2 cores)."""
    return build_cocotb([verilog_path], "spikingformer_core", build_root, waves)


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
    run_cocotb_test(runner, build_dir, "tb_engine", "spikingformer_core", work_dir,
                junit or os.path.join(work_dir, "results.xml"), env={"ENGINE_JOB": job_path}, waves=waves)
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
