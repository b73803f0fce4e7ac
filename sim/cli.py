"""`python flow.py sim`: every test image through the generated core under Verilator, checked against golden.

Writes build/<preset>/sim/results.json with images, mismatches, cycles_mean, cycles_max, sim_seconds and, for
every mismatch, the first layer, timestep, token and channel that differ.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from golden.errors import FlowError
from golden.intmodel import load, load_testset


def add_arguments(parser):
    parser.add_argument("--preset", default="digits")
    parser.add_argument("--model", help="integer model (default: build/<preset>/intmodel.zip)")
    parser.add_argument("--rtl", help="generated core folder (default: build/<preset>/rtl)")
    parser.add_argument("--images", type=int, default=0, help="simulate only the first N test images (0: all)")
    parser.add_argument("--waves", action="store_true", help="keep an FST waveform")


def main(args) -> int:
    from sim.check import check_images
    base = os.path.join("build", args.preset)
    model = load(args.model or os.path.join(base, "intmodel.zip"))
    rtl_dir = args.rtl or os.path.join(base, "rtl")
    if not os.path.exists(os.path.join(rtl_dir, "manifest.json")):
        raise FlowError(f"no generated core in {rtl_dir}; run `python flow.py gen-rtl --preset {args.preset}` first.")
    manifest = json.loads(Path(os.path.join(rtl_dir, "manifest.json")).read_text())
    if manifest["model_sha256"] != model.sha256:
        raise FlowError(f"the core in {rtl_dir} was generated from another model; rerun `python flow.py gen-rtl`.")
    images, labels = load_testset(os.path.join(base, "testset.npz"))
    if args.images:
        images, labels = images[:args.images], labels[:args.images]
    summary = check_images(model, rtl_dir, images, os.path.join(base, "sim"), labels=labels, waves=args.waves)
    print(f"sim: {summary['images']} images, {summary['mismatches']} mismatches, cycles mean "
          f"{summary['cycles_mean']:.0f} max {summary['cycles_max']}, {summary['sim_cycles_per_second']:.0f} "
          f"simulated cycles/s, results in {summary['path']}")
    return 0 if summary["mismatches"] == 0 else 1
