"""`python flow.py bench` (`make bench`): synthesise the default core at several lane counts and store the result.

For each lane count P (default 8, 16, 32) the core is generated from build/<preset>/intmodel.zip, synthesised for
ECP5 (median Fmax over --seeds) and compared with the analytic resource model. The result, with each point's
manifest (so the model can be re-evaluated without regenerating) and the model and Verilog hashes it was measured
on, goes to build/<preset>/bench/synth_results.json; `make bench` stores it as docs/bench/synth_results.json
(`--out`), which tests/test_resources.py checks the resource model against, and tests/test_stored_results.py checks
still describes the RTL gen-rtl generates today. Finished points are reused when their inputs did not change, so an
interrupted bench resumes.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from golden.artifacts import atomic_json
from flowerrors import FlowError

from hls_models import resources
from .explore import generate_core
from .synth import (add_router_argument, add_scheduler_argument, add_seed_timeout_argument, seed_timeout_seconds,
                    synthesise)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "docs", "bench", "synth_results.json")     # the stored benchmark (make bench)
TOLERANCE = 0.10        # the resource model must be within ±10 % of synthesis (measured worst: 6.2 %, docs/synth.md)


def relative_errors(estimate: dict, synth: dict) -> dict:
    return {k: (estimate[k] - synth[k]) / synth[k] if synth[k] else (0.0 if estimate[k] == 0 else float("inf"))
            for k in ("lut", "ff", "bram")}


def add_arguments(parser) -> None:
    parser.add_argument("--preset", default="digits", help="model preset; reads build/<preset>/ (default: digits)")
    parser.add_argument("--build", default="build", help="build directory (default: the project's build/)")
    parser.add_argument("--lanes", type=int, nargs="+", default=[4, 8, 16],
                        help="lane counts to tabulate and synthesise (default: 4 8 16)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="place-and-route seeds per point; Fmax is their median (default 3)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="place-and-route seeds run side by side (default: the CPU count)")
    parser.add_argument("--freq", type=float, default=None, help="nextpnr target frequency (MHz)")
    parser.add_argument("--out", default=None, help="where to store the results (default "
                        "build/<preset>/bench/synth_results.json; `make bench` stores docs/bench/synth_results.json)")
    parser.add_argument("--cycles-only", action="store_true",
                        help="only the cycle table: cycles beside the event bound per layer (no synthesis)")
    parser.add_argument("--cycles-out", default=None, help="where to store the cycle table (default "
                        "build/<preset>/bench/cycles.json; `make bench` stores docs/bench/cycles.json)")
    add_scheduler_argument(parser)
    add_seed_timeout_argument(parser)
    add_router_argument(parser)


def cycle_bench(model, preset_dir: str, args) -> dict:
    """Generate the core at every lane count and store its cycle table (cycles beside the event bound, per layer,
    mean over the preset's test images; docs/engine.md "Event bound") in args.cycles_out; returns the manifests."""
    from golden.artifacts import read_json
    from golden.inference import run
    from golden.intmodel import load_testset
    from hls_models import engine_cycles
    images, _ = load_testset(os.path.join(preset_dir, "testset.npz"),
                             command=f"python flow.py train-quant --preset {args.preset}")
    golden = run(model, images, trace=True)
    manifests, tables = {}, []
    for lanes in args.lanes:
        point_dir = os.path.join(preset_dir, "bench", f"P{lanes}")
        print(f"bench: P={lanes}: generating the core...", flush=True)
        manifests[lanes] = manifest = generate_core(args.preset, args.build, lanes, point_dir)
        table = engine_cycles.cycle_table(model, images, manifest, golden)
        table["verilog_sha256"] = manifest.get("verilog_sha256")
        print(f"bench: P={lanes}: cycles per inference beside the event bound ({table['images']} test images):\n"
              + engine_cycles.format_cycle_table(table), flush=True)
        tables.append(table)
    out = os.path.abspath(args.cycles_out or os.path.join(preset_dir, "bench", "cycles.json"))
    kept = []
    if os.path.exists(out):
        old = read_json(out, "the stored cycle table", f"python flow.py bench --preset {args.preset} --cycles-only")
        if old.get("intmodel_sha256") == model.sha256:
            kept = [p for p in old.get("points", []) if p["lanes"] not in args.lanes]
    atomic_json(out, {"preset": args.preset, "intmodel_sha256": model.sha256,
                       "points": sorted(kept + tables, key=lambda p: p["lanes"])})
    print(f"bench: wrote {os.path.relpath(out)}", flush=True)
    return manifests


def main(args) -> int:
    from golden.artifacts import build_root, read_json
    from golden.intmodel import load
    preset_dir = os.path.join(build_root(args.build), args.preset)
    model = load(os.path.join(preset_dir, "intmodel.zip"), command=f"python flow.py train-quant --preset {args.preset}")
    args.out = os.path.abspath(args.out or os.path.join(preset_dir, "bench", "synth_results.json"))
    points = []
    started = time.time()
    kept = []
    if os.path.exists(args.out):
        # points of other lane counts from an earlier bench of the same model stay (a bench can be run in parts)
        old = read_json(args.out, "the stored benchmark", f"python flow.py bench --preset {args.preset} --out {args.out}")
        if old.get("intmodel_sha256") == model.sha256:
            kept = [p for p in old.get("points", []) if p["lanes"] not in args.lanes]

    def store():
        # after every point, so an interrupted bench keeps what it finished
        atomic_json(args.out, {"preset": args.preset, "intmodel_sha256": model.sha256,
                                "device": "LFE5U-85F-6CABGA381", "tolerance": TOLERANCE,
                                "tool_versions": points[-1]["tool_versions"] if points else {},
                                "points": sorted(kept + points, key=lambda p: p["lanes"])})

    manifests = cycle_bench(model, preset_dir, args)
    if args.cycles_only:
        return 0
    for lanes in args.lanes:
        point_dir = os.path.join(preset_dir, "bench", f"P{lanes}")
        manifest = manifests[lanes]
        verilog, synth_dir = os.path.join(point_dir, "core.v"), os.path.join(point_dir, "synth")
        default_core = os.path.join(preset_dir, "rtl", "core.v")
        if os.path.exists(default_core) and Path(default_core).read_bytes() == Path(verilog).read_bytes():
            # the preset's own core: share `flow.py synth`'s netlist and seeds instead of running them again
            verilog, synth_dir = default_core, os.path.join(preset_dir, "synth", "ecp5")
        rep = synthesise(verilog, manifest.get("top", "spikingformer_core"), "ecp5", args.seeds, args.freq,
                         synth_dir, params=manifest.get("parameters", {}), jobs=args.jobs,
                         seed_timeout_s=seed_timeout_seconds(args), scheduler=args.scheduler,
                         provenance={"model_sha256": manifest.get("model_sha256")}, router=args.router)
        if rep.get("verilog_sha256") != manifest.get("verilog_sha256"):
            raise FlowError(f"the synthesised Verilog of P={lanes} is not the core its manifest describes; rerun the bench.")
        est = resources.estimate_from_manifest(manifest)
        if est is None:
            raise FlowError("the resource model cannot read the core's manifest; update hls_models/resources.py.")
        errors = relative_errors(est, rep)
        points.append({
            "lanes": lanes,
            "seeds": args.seeds,
            "model_sha256": model.sha256, "verilog_sha256": manifest.get("verilog_sha256"),
            "synth": {k: rep.get(k) for k in ("lut", "ff", "bram", "dsp", "fmax_mhz", "fmax_per_seed", "critical_path",
                                              "lut_mapper", "bram_outreg_bits", "freq_target_mhz", "router")},
            "seeds_used": rep.get("seeds_used"), "seeds_timed_out": rep.get("seeds_timed_out", []),
            "estimate": {k: est[k] for k in ("lut", "ff", "bram")},
            "estimate_blocks": est["blocks"],
            "relative_error": {k: round(v, 4) for k, v in errors.items()},
            "manifest": manifest,
            "tool_versions": rep["tool_versions"],
        })
        store()
        print(f"bench: P={lanes}: synthesis {rep['lut']:,} LUT4 / {rep['ff']:,} FF / {rep['bram']} BRAM, "
              f"{rep['fmax_mhz']:.1f} MHz; model {est['lut']:,} / {est['ff']:,} / {est['bram']} "
              f"({', '.join(f'{k} {100 * v:+.1f} %' for k, v in errors.items())})", flush=True)
    worst = max(abs(v) for p in kept + points for v in p["relative_error"].values())
    print(f"bench: wrote {os.path.relpath(args.out)} in {time.time() - started:.0f} s; worst model error "
          f"{100 * worst:.1f} % (tolerance {100 * TOLERANCE:.0f} %)")
    return 0 if worst <= TOLERANCE else 1
