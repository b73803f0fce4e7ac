"""`python flow.py gen-rtl`: the core's Verilog, manifest and memory images from the integer model."""
from __future__ import annotations

import os
import time

from golden.artifacts import preset_dir
from flowerrors import FlowError
from golden.intmodel import load


def add_arguments(parser):
    parser.add_argument("--preset", default="digits", help="preset whose model to use (default: digits)")
    parser.add_argument("--build", default="build", help="build directory (default: the project's build/)")
    parser.add_argument("--model", help="integer model file (default: build/<preset>/intmodel.zip)")
    parser.add_argument("--lanes", type=int, default=16, help="output-channel lanes P, a power of two (default 16)")
    parser.add_argument("--out", help="output folder (default: build/<preset>/rtl)")


def fit_note(manifest: dict, target: str = "ecp5") -> str | None:
    """One sentence when the analytic resource model says the core needs more LUT4 or block RAM than the target
    device has (gen-rtl prints it; synth refuses such a core before place and route), else None."""
    from hls_models.resources import estimate_from_manifest
    from tools.synth import TARGETS
    est = estimate_from_manifest(manifest, target)
    if est is None:
        return None
    cap = TARGETS[target]["capacity"]
    over = [f"{est[k]:,} {name} of the {cap[k]:,} the {TARGETS[target]['device']} has"
            for k, name in (("bram", "block RAMs (DP16KD)" if target == "ecp5" else "block RAMs"), ("lut", "LUT4"))
            if est[k] > cap[k]]
    if not over:
        return None
    return (f"the resource model puts this core at {' and '.join(over)}, so it will not fit that device; it can be "
            "simulated, but for synthesis use a smaller model (fewer channels, blocks or timesteps).")


def main(args) -> int:
    train = f"python flow.py train-quant --preset {args.preset}"
    model_path = args.model or os.path.join(preset_dir(args.preset, args.build), "intmodel.zip")
    out = args.out or os.path.join(preset_dir(args.preset, args.build), "rtl")
    model = load(model_path, command=train)
    try:
        from rtl.gen import generate
    except ImportError as exc:  # amaranth missing
        raise FlowError(f"the RTL generator cannot load ({exc}); run `make venv` first.") from None
    start = time.time()
    print(f"gen-rtl: {os.path.relpath(model_path)} (sha256 {model.sha256[:12]}) -> {os.path.relpath(out)}, "
          f"{args.lanes} lanes", flush=True)
    manifest = generate(model, args.lanes, out)
    d, w = manifest["dims"], manifest["widths"]
    print(f"gen-rtl: {d['layers']} layers, {d['weight_rows']} weight rows x {args.lanes * w['weight']} bits, "
          f"{d['act_rows']} activation rows, widths {w}", flush=True)
    note = fit_note(manifest)
    if note:
        print(f"gen-rtl: note: {note}", flush=True)
    print(f"gen-rtl: wrote {os.path.relpath(os.path.join(out, 'core.v'))} and manifest.json in "
          f"{time.time() - start:.1f} s")
    return 0
