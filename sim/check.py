"""The checker: RTL records (sim/tb_engine.py) against golden traces and the cycle model, image by image."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from golden import compare
from golden.inference import run
from hwmodels.engine_cycles import exp_cycles

from .engine_sim import decode_rows, run_images


def check_images(model, rtl_dir: str, images, work_dir: str, labels=None, waves: bool = False,
                 results_name: str = "results.json") -> dict:
    """Simulate `images` on the core in rtl_dir; compare logits, class, every layer's spike words and the cycle
    count with golden and the cycle model. Writes work_dir/results_name and returns the summary."""
    manifest = json.loads(Path(os.path.join(rtl_dir, "manifest.json")).read_text())
    images = model.check_images(images)
    start = time.time()
    records = run_images(os.path.join(rtl_dir, "core.v"), manifest, images, os.path.join(work_dir, "run"),
                         waves=waves, junit=os.path.join(work_dir, "junit.xml"))
    sim_seconds = time.time() - start
    ref = run(model, images, trace=True)
    trace = dict(ref.trace)
    trace["_pixels"] = images
    lanes = manifest["parameters"]["lanes"]
    per_image, mismatches = [], 0
    for i, rec in enumerate(records):
        one = {k: (v[:, i:i + 1] if v.ndim > 2 else v[i:i + 1]) for k, v in ref.trace.items()}
        dut = decode_rows(rec["rows"], manifest)
        dut["logits"] = np.asarray([rec["logits"]], dtype=np.int64)
        problem = compare.first_mismatch(one, dut)
        if problem is None and rec["class"] != int(ref.classes[i]):
            problem = f"class: expected {int(ref.classes[i])}, got {rec['class']}"
        if problem is None and rec["overflow"]:
            problem = "the core's overflow flag is set: a value left its analysed width"
        expected = exp_cycles(model, trace, i, manifest)
        if problem is None and rec["cycles"] != expected:
            problem = f"cycles: the model predicts {expected}, the RTL took {rec['cycles']}"
        mismatches += problem is not None
        per_image.append({"image": i, "class": rec["class"], "cycles": rec["cycles"], "exp_cycles": expected,
                          "label": None if labels is None else int(labels[i]), "mismatch": problem})
    cycles = np.array([r["cycles"] for r in records])
    summary = {
        "images": len(records), "mismatches": mismatches,
        "cycles_mean": float(cycles.mean()), "cycles_max": int(cycles.max()), "cycles_min": int(cycles.min()),
        "sim_seconds": sim_seconds, "sim_cycles_per_second": float(cycles.sum() / sim_seconds),
        "lanes": lanes, "model_sha256": model.sha256,
        "accuracy": None if labels is None else float(np.mean([r["class"] == r["label"] for r in per_image])),
        "first_mismatch": next((r["mismatch"] for r in per_image if r["mismatch"]), None),
        "per_image": per_image,
    }
    path = os.path.join(work_dir, results_name)
    os.makedirs(work_dir, exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(summary, f, indent=1)
    os.replace(path + ".tmp", path)
    summary["path"] = path
    return summary
