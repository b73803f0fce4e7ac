"""`python flow.py sim`: test images through the generated core, checked against golden.

The fast harness (sim/harness.py) compiles the core once and runs the images free inside the simulator, split into
--jobs shards (local workers, or a Dask cluster with --scheduler: cluster/). Writes
build/<preset>/sim/results.json (all images) or results-first<N>.json (--images N), with images, mismatches,
cycles_mean, cycles_max, sim_seconds, simulated cycles per second and, for every mismatch, the first layer, timestep,
token and channel that differ; and a JUnit file beside it (one testcase per image).

`--speed` measures the simulation speed (the cocotb bench against the harness, one worker and --jobs workers) and
writes docs/bench/sim_speed.json (`make bench`).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

import cluster
from golden.artifacts import PROJECT, need, preset_dir, read_json
from flowerrors import FlowError, image_count
from golden.intmodel import load, load_testset, stratified_subset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEED = os.path.join(ROOT, "docs", "bench", "sim_speed.json")


def add_arguments(parser):
    parser.add_argument("--preset", default="digits", help="model preset; reads build/<preset>/ (default: digits)")
    parser.add_argument("--build", default="build", help="build directory (default: the project's build/)")
    parser.add_argument("--model", help="integer model (default: build/<preset>/intmodel.zip)")
    parser.add_argument("--rtl", help="generated core folder (default: build/<preset>/rtl)")
    parser.add_argument("--images", type=image_count, default="all", help="N: the first N test images; all (default): every one")
    parser.add_argument("--stratified", action="store_true",
                        help="with --images N: a fixed class-balanced subset of N test images (each class's first "
                             "N/classes images) instead of the first N")
    parser.add_argument("--simulator", choices=["verilator", "icarus"], default="verilator",
                        help="simulator of the harness (default verilator; icarus for a cross-check, slow)")
    parser.add_argument("--bench", choices=["harness", "cocotb"], default="harness",
                        help="harness (default): free-running in the simulator; cocotb: the Python bench")
    parser.add_argument("--full-readout", action="store_true",
                        help="return every image's activation-RAM rows, not only those of mismatching images")
    parser.add_argument("--waves", action="store_true", help="keep an FST waveform (cocotb bench)")
    parser.add_argument("--speed", action="store_true",
                        help="measure simulated cycles per second (cocotb vs harness) into docs/bench/sim_speed.json")
    cluster.add_arguments(parser, jobs_default=1, what="image shards")


def check_core(rtl_dir: str, model, preset: str) -> dict:
    """The core's manifest, after checking it is readable, belongs to `model` and still describes core.v."""
    gen = f"python flow.py gen-rtl --preset {preset}"
    path = os.path.join(rtl_dir, "manifest.json")
    if not os.path.exists(path):
        raise FlowError(f"no generated core in {rtl_dir}; run `{gen}` first.")
    manifest = read_json(path, "the core manifest", gen)
    need(manifest, ("model_sha256", "verilog_sha256", "parameters", "dims", "memory_map"), path, "the core manifest", gen)
    if manifest["model_sha256"] != model.sha256:
        raise FlowError(f"the core in {rtl_dir} was generated from model {str(manifest['model_sha256'])[:12]}, not the "
                        f"current model {model.sha256[:12]}; rerun `{gen}`.")
    core = os.path.join(rtl_dir, "core.v")
    if not os.path.exists(core) or hashlib.sha256(Path(core).read_bytes()).hexdigest() != manifest["verilog_sha256"]:
        raise FlowError(f"{core} is missing or is not the Verilog its manifest describes; rerun `{gen}`.")
    return manifest


def _load(args):
    base = preset_dir(args.preset, args.build)
    for where in (PROJECT, base):
        if any(c.isspace() for c in os.path.abspath(where)):
            raise FlowError(f"the path {os.path.abspath(where)} contains a space, which GNU make (Verilator's build) "
                            "cannot handle; move the project to a folder without spaces.")
    train = f"python flow.py train-quant --preset {args.preset}"
    model = load(args.model or os.path.join(base, "intmodel.zip"), command=train)
    rtl_dir = args.rtl or os.path.join(base, "rtl")
    check_core(rtl_dir, model, args.preset)
    images, labels = load_testset(os.path.join(base, "testset.npz"), command=train)
    return base, model, rtl_dir, images, labels


def main(args) -> int:
    from sim.check import check_images
    count = args.images or 0
    cluster.check_jobs(args.jobs)
    if args.waves and args.bench != "cocotb":
        raise FlowError("--waves needs the cocotb bench; add --bench cocotb.")
    if args.speed:
        return speed(args)
    base, model, rtl_dir, images, labels = _load(args)
    total = len(images)
    partial = 0 < count < len(images)
    if args.stratified and not partial:
        raise FlowError(f"--stratified picks a subset, so it needs --images N with N below the {total} test images.")
    indices = np.arange(total)
    if partial:
        indices = stratified_subset(labels, count) if args.stratified else indices[:count]
        images, labels = images[indices], labels[indices]
    # a partial run never replaces the whole-test-set results.json that the report reads
    name = (f"results-{'stratified' if args.stratified else 'first'}{count}.json" if partial else "results.json")
    if args.simulator != "verilator":
        name = name.replace(".json", f"-{args.simulator}.json")
    summary = check_images(model, rtl_dir, images, os.path.join(base, "sim"), labels=labels, waves=args.waves,
                           results_name=name, bench=args.bench, simulator=args.simulator, jobs=args.jobs,
                           scheduler=args.scheduler, full_readout=args.full_readout, progress=print,
                           extra={"testset_images": total, "partial": partial,
                                  "subset": ("stratified" if args.stratified else "first") if partial else "all",
                                  "image_indices": indices.tolist()})
    print(f"sim: {summary['images']} images, {summary['mismatches']} mismatches, cycles mean "
          f"{summary['cycles_mean']:.0f} max {summary['cycles_max']}, {summary['sim_seconds']:.1f} s on "
          f"{summary['workers']} worker(s), {summary['cycles_per_second_per_worker']:,.0f} simulated cycles/s per "
          f"worker; results in {summary['path']}, JUnit {summary['junit']}")
    if summary["first_mismatch"]:
        print(f"sim: first mismatch: {summary['first_mismatch']}")
    return 0 if summary["mismatches"] == 0 else 1


def speed(args) -> int:
    """cocotb bench (a few images) against the harness (one worker, then --jobs workers, all images)."""
    from sim.check import check_images
    base, model, rtl_dir, images, labels = _load(args)
    work = os.path.join(base, "sim")      # the harness build of `flow.py sim` is reused
    count = args.images or len(images)
    jobs = max(2, args.jobs)
    runs = {}
    for label, kwargs, n in (("cocotb", dict(bench="cocotb"), min(count, 8)),
                             ("harness_1_worker", dict(jobs=1), count),
                             (f"harness_{jobs}_workers", dict(jobs=jobs, scheduler=args.scheduler), count)):
        print(f"sim --speed: {label}, {n} images...", flush=True)
        s = check_images(model, rtl_dir, images[:n], work, labels=labels[:n], results_name=f"speed-{label}.json",
                         progress=print, **kwargs)
        runs[label] = {"images": s["images"], "mismatches": s["mismatches"], "workers": s["workers"],
                       "sim_seconds": round(s["sim_seconds"], 2), "golden_seconds": round(s["golden_seconds"], 2),
                       "golden_cpu_seconds": round(s["golden_cpu_seconds"], 2),
                       "cycles_per_second_per_worker": round(s["cycles_per_second_per_worker"]),
                       "cycles_per_cpu_second_per_worker": round(s["cycles_per_cpu_second_per_worker"]),
                       "cycles_mean": s["cycles_mean"]}
        print(f"sim --speed: {label}: {s['images']} images in {s['sim_seconds']:.1f} s (golden {s['golden_seconds']:.1f} s "
              f"of it), {s['cycles_per_second_per_worker']:,.0f} cycles/s per worker in wall time, "
              f"{s['cycles_per_cpu_second_per_worker']:,.0f} per CPU second, {s['mismatches']} mismatches")
    result = {"preset": args.preset, "model_sha256": model.sha256, "date": time.strftime("%Y-%m-%d"),
              "cpu_count": os.cpu_count(), "runs": runs,
              "speedup_per_worker_cpu": round(runs["harness_1_worker"]["cycles_per_cpu_second_per_worker"] /
                                              runs["cocotb"]["cycles_per_cpu_second_per_worker"], 1)}
    os.makedirs(os.path.dirname(SPEED), exist_ok=True)
    Path(SPEED).write_text(json.dumps(result, indent=1) + "\n")
    print(f"sim --speed: wrote {os.path.relpath(SPEED)}; the harness simulates {result['speedup_per_worker_cpu']}x "
          "the cocotb bench's cycles per CPU second")
    return 0 if all(r["mismatches"] == 0 for r in runs.values()) else 1
