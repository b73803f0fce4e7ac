"""`python flow.py gen-rtl`: the core's Verilog, manifest and memory images from the integer model."""
from __future__ import annotations

import os
import time

from golden.errors import FlowError
from golden.intmodel import load


def add_arguments(parser):
    parser.add_argument("--preset", default="digits", help="preset whose model to use (default: digits)")
    parser.add_argument("--model", help="integer model file (default: build/<preset>/intmodel.zip)")
    parser.add_argument("--lanes", type=int, default=16, help="output-channel lanes P, a power of two (default 16)")
    parser.add_argument("--out", help="output folder (default: build/<preset>/rtl)")


def main(args) -> int:
    model_path = args.model or os.path.join("build", args.preset, "intmodel.zip")
    out = args.out or os.path.join("build", args.preset, "rtl")
    model = load(model_path)
    try:
        from rtl.gen import generate
    except ImportError as exc:  # amaranth missing
        raise FlowError(f"the RTL generator cannot load ({exc}); run `make venv` first.") from None
    start = time.time()
    print(f"gen-rtl: {model_path} (sha256 {model.sha256[:12]}) -> {out}, {args.lanes} lanes", flush=True)
    manifest = generate(model, args.lanes, out)
    d, w = manifest["dims"], manifest["widths"]
    print(f"gen-rtl: {d['layers']} layers, {d['weight_rows']} weight rows x {args.lanes * w['weight']} bits, "
          f"{d['act_rows']} activation rows, widths {w}", flush=True)
    print(f"gen-rtl: wrote {os.path.join(out, 'core.v')} and manifest.json in {time.time() - start:.1f} s")
    return 0
