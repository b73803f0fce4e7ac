"""`python flow.py explore`: sweep the core's generics with the analytic models, synthesise the Pareto points.

For every lane count P (and the other generics gen-rtl exposes, through --gen-arg) the core is generated (cheap: no
synthesis), its cycles per inference come from the cycle model (hls_models/engine_cycles.py, exact) on test images and its
LUT/FF/BRAM from the resource model (hls_models/resources.py). The points that no other point beats in both cycles
and LUTs (the Pareto front) are synthesised on ECP5; the plot shows cycles/inference against LUTs for the model and
for synthesis. Results: build/<preset>/explore/explore.json and pareto.png.
"""
from __future__ import annotations

import functools
import io
import json
import os

import numpy as np

import cluster
from cluster import map_tasks
from golden.artifacts import atomic_json, atomic_write
from flowerrors import USER_ERRORS, FlowError, image_count

from hls_models import resources
from .synth import add_seed_timeout_argument, seed_timeout_seconds, synthesise


def generate_core(preset: str, build: str, lanes: int, out_dir: str, extra: list[str] | None = None) -> dict:
    """Generate the core of build/<preset>/intmodel.zip for one lane count into out_dir, in this process, with the
    gen-rtl options in `extra` (as typed on its command line); returns its manifest. A lane count or option the
    generator refuses raises its one-sentence error. build/<preset>/rtl/ is never touched."""
    import argparse

    from golden.artifacts import build_root
    from rtl import cli as gen_rtl
    build = build_root(build)
    parser = argparse.ArgumentParser(prog="flow.py gen-rtl", exit_on_error=False)
    gen_rtl.add_arguments(parser)
    argv = ["--preset", preset, "--model", os.path.join(build, preset, "intmodel.zip"), "--lanes", str(lanes),
            "--out", out_dir, *(extra or [])]
    try:
        args = parser.parse_args(argv)
    except (argparse.ArgumentError, SystemExit) as exc:
        raise FlowError(f"gen-rtl does not accept the options {' '.join(extra or [])} ({exc}); see "
                        f"`python flow.py gen-rtl --help`.") from None
    gen_rtl.main(args)
    with open(os.path.join(out_dir, "manifest.json")) as f:
        return json.load(f)


def model_cycles(model, golden, manifest: dict) -> float:
    """Mean cycles per inference from the core's exact cycle model (hls_models/engine_cycles.py) for the core that
    gen-rtl's `manifest` describes."""
    from hls_models import engine_cycles
    return float(np.mean([engine_cycles.exp_cycles(model, golden, i, manifest) for i in range(len(golden.images))]))


def pareto(points: list[dict], x: str = "lut", y: str = "cycles") -> list[dict]:
    """Points not dominated in (x, y), both minimised, sorted by x."""
    front = []
    for p in sorted(points, key=lambda p: (p[x], p[y])):
        if not front or p[y] < front[-1][y]:
            front.append(p)
    return front


def plot(points: list[dict], front: list[dict], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.scatter([p["lut"] for p in points], [p["cycles"] for p in points], color="#999", label="model")
    for p in points:
        ax.annotate(f"P={p['lanes']}", (p["lut"], p["cycles"]), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.plot([p["lut"] for p in front], [p["cycles"] for p in front], color="#36c", label="Pareto front (model)")
    synth = [p for p in points if p.get("synth_lut")]
    if synth:
        ax.scatter([p["synth_lut"] for p in synth], [p["cycles"] for p in synth], marker="x", color="#c30", s=60,
                   label="synthesised (ECP5)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("LUT4")
    ax.set_ylabel("cycles per inference")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def evaluate_point(lanes: int, preset: str, build: str, out: str, gen_args: list, model, golden) -> dict | str:
    """One exploration point: the core for `lanes` generated, its model cycles and resources; a sentence when
    gen-rtl rejects the lane count (`golden`: golden.inference.run(model, images, trace=True) of the test images). A
    function of picklable arguments, so it can run on a Dask worker."""
    point_dir = os.path.join(out, f"P{lanes}")
    try:
        manifest = generate_core(preset, build, lanes, point_dir, gen_args)
    except USER_ERRORS as exc:
        return str(exc)
    est = resources.estimate_from_manifest(manifest)
    if est is None:
        raise FlowError("the resource model cannot read this core's manifest; regenerate it with the "
                        "current `python flow.py gen-rtl`.")
    cyc = model_cycles(model, golden, manifest)
    return {"lanes": lanes, "cycles": cyc, "lut": est["lut"], "ff": est["ff"], "bram": est["bram"], "dir": point_dir}


def add_arguments(parser) -> None:
    parser.add_argument("--preset", default="digits", help="model preset; reads build/<preset>/ (default: digits)")
    parser.add_argument("--build", default="build", help="build directory (default: the project's build/)")
    parser.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64],
                        help="lane counts to sweep; those gen-rtl rejects for this model are skipped")
    parser.add_argument("--images", type=image_count, default="16",
                        help="N: the first N test images for the cycle model (default 16); all: every one")
    parser.add_argument("--synth", type=int, default=3, help="synthesise at most this many Pareto points (0: none)")
    parser.add_argument("--seeds", type=int, default=1, help="place-and-route seeds per synthesised point")
    add_seed_timeout_argument(parser)
    parser.add_argument("--gen-arg", action="append", default=[], metavar="OPTION",
                        help="a gen-rtl option for every point, e.g. --gen-arg=--some-option (repeatable)")
    cluster.add_arguments(parser, jobs_default=1, what="exploration points and place-and-route seeds")


def main(args) -> int:
    from golden import inference
    from golden.artifacts import build_root
    from golden.intmodel import load, load_testset
    cluster.check_jobs(args.jobs)
    from .synth import TARGETS
    preset_dir = os.path.join(build_root(args.build), args.preset)
    out = os.path.join(preset_dir, "explore")
    train = f"python flow.py train-quant --preset {args.preset}"
    model = load(os.path.join(preset_dir, "intmodel.zip"), command=train)
    images, _ = load_testset(os.path.join(preset_dir, "testset.npz"), command=train)
    cap = TARGETS["ecp5"]["capacity"]
    images = images[:args.images]
    golden = inference.run(model, images, trace=True)
    # each lane count is one independent task (gen-rtl + models): local workers or a Dask cluster (cluster/)
    task = functools.partial(evaluate_point, preset=args.preset, build=args.build, out=out, gen_args=args.gen_arg,
                             model=model, golden=golden)
    lanes_list = sorted(set(args.lanes))
    results = map_tasks(task, lanes_list, jobs=args.jobs, scheduler=args.scheduler, key="explore-point",
                        processes=True)     # generation is Python (Amaranth): processes, not threads
    points = []
    for lanes, result in zip(lanes_list, results):
        if isinstance(result, str):
            print(f"explore: P={lanes}: skipped: {result}", flush=True)
            continue
        result["fits_ecp5"] = fits = result["lut"] <= cap["lut"] and result["bram"] <= cap["bram"]
        points.append(result)
        print(f"explore: P={lanes}: {result['cycles']:,.0f} cycles, ~{result['lut']:,} LUT4, {result['ff']:,} FF, "
              f"{result['bram']} BRAM" + ("" if fits else f"; does NOT fit the LFE5U-85F ({cap['lut']:,} LUT4, "
                                                          f"{cap['bram']} DP16KD), not synthesised"))
    front = pareto(points)
    fits = [p for p in front if p["fits_ecp5"]]
    if points and not any(p["fits_ecp5"] for p in points):
        print(f"explore: no lane count fits the LFE5U-85F: the smallest core needs "
              f"{min(p['bram'] for p in points)} DP16KD of {cap['bram']} and {min(p['lut'] for p in points):,} LUT4 of "
              f"{cap['lut']:,}; nothing is synthesised (use a smaller model).", flush=True)
    if args.synth and len(fits) > args.synth:
        # spread the synthesised points over the front: its two ends and evenly between
        picks = sorted({round(i * (len(fits) - 1) / max(1, args.synth - 1)) for i in range(args.synth)})
        fits = [fits[i] for i in picks]
    for p in fits[:args.synth]:
        print(f"explore: synthesising P={p['lanes']} (Pareto point)...", flush=True)
        rep = synthesise(os.path.join(p["dir"], "core.v"), "spikingformer_core", "ecp5", args.seeds, None,
                         os.path.join(p["dir"], "synth"), seed_timeout_s=seed_timeout_seconds(args), jobs=args.jobs,
                         scheduler=args.scheduler)
        p.update(synth_lut=rep["lut"], synth_ff=rep["ff"], synth_bram=rep["bram"], fmax_mhz=rep["fmax_mhz"],
                 latency_us=p["cycles"] / rep["fmax_mhz"])
    os.makedirs(out, exist_ok=True)
    plot(points, front, os.path.join(out, "pareto.png"))
    atomic_json(os.path.join(out, "explore.json"),
                 {"points": [{k: v for k, v in p.items() if k != "dir"} for p in points],
                  "pareto_lanes": [p["lanes"] for p in front], "model_sha256": model.sha256})
    print(f"explore: Pareto lanes {[p['lanes'] for p in front]}; wrote {os.path.relpath(out)}/explore.json and pareto.png")
    return 0


def resources_capacity() -> int:
    from .synth import TARGETS
    return TARGETS["ecp5"]["capacity"]["lut"]
