"""`python flow.py run --port /dev/ttyUSB0 [--images N]`: stream the test set through the board (or the simulated
board) and check every result against the golden model, bit for bit.

Prints accuracy, the device's cycles per inference and latency at its clock, the host round trip and the
throughput, and writes build/<preset>/board/run.json. Exit status 1 when any image differs from golden.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from flowerrors import FlowError, image_count
from golden import protocol as proto
from golden.artifacts import atomic_write, preset_dir
from golden.inference import run as golden_run
from golden.intmodel import load, load_testset

from .runtime import BoardLink, link_test


def add_arguments(parser):
    parser.add_argument("--port", required=True, help="serial port of the board (e.g. /dev/ttyUSB0)")
    parser.add_argument("--baud", type=int, default=3_000_000, help="baud rate of the bitstream (default 3000000)")
    parser.add_argument("--preset", default="digits", help="preset whose model and test set to use (default: digits)")
    parser.add_argument("--build", default="build", help="build directory (default: the project's build/)")
    parser.add_argument("--model", help="integer model (default: build/<preset>/intmodel.zip)")
    parser.add_argument("--testset", help="test set .npz (default: build/<preset>/testset.npz)")
    parser.add_argument("--images", type=image_count, default="all",
                        help="N: the first N test images; all (default): every one")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a reply (default 5)")
    parser.add_argument("--link-test", action="store_true",
                        help="first send bad frames (bad CRC, truncated, unknown command, wrong size, ...) and "
                             "check the error replies and the recovery")
    parser.add_argument("--fresh", action="store_true",
                        help="with --link-test: the board was just reset, also check START without an image")
    parser.add_argument("--out", help="result file (default: build/<preset>/board/run.json)")


def main(args) -> int:
    base = preset_dir(args.preset, args.build)
    model = load(args.model or os.path.join(base, "intmodel.zip"))
    images, labels = load_testset(args.testset or os.path.join(base, "testset.npz"))
    images, labels = images[:args.images], labels[:args.images]
    images = model.check_images(images)
    ref = golden_run(model, images)

    link = BoardLink.open(args.port, args.baud, args.timeout)
    try:
        return _session(args, link, model, images, labels, ref)
    finally:
        link.close()


def _session(args, link, model, images, labels, ref) -> int:
    base = preset_dir(args.preset, args.build)
    ident = link.identify()
    if ident.model_sha256 != bytes.fromhex(model.sha256):
        raise FlowError(f"the board runs model {ident.model_sha256.hex()[:12]}, not {model.sha256[:12]} "
                        f"({args.model or os.path.join(base, 'intmodel.zip')}); build and load the bitstream "
                        f"of this model (flow.py bitstream) or pass its --model.")
    print(f"run: board core {ident.core_id.hex()} (interface v{ident.core_interface}, protocol v{ident.protocol}), "
          f"model {model.sha256[:12]}, T={ident.T}, {ident.lanes} lanes, {ident.clock_hz / 1e6:g} MHz, "
          f"{ident.baud} baud", flush=True)
    if tuple(model.input_shape) and ident.pixels != int(np.prod(model.input_shape)):
        raise FlowError(f"the board expects {ident.pixels} pixels per image, the model {model.input_shape}.")
    cases = []
    if args.link_test:
        cases = link_test(link, images[0], fresh=args.fresh)
    per_image, mismatches = [], 0
    t0 = time.perf_counter()
    for i, image in enumerate(images):
        result, seconds = link.infer(image)
        problem = None
        exp_logits = [int(v) for v in ref.logits[i]]
        if not result.done:
            problem = "the device reports no finished inference"
        elif result.logits != exp_logits:
            k = next(j for j, (a, b) in enumerate(zip(result.logits, exp_logits)) if a != b)
            problem = f"logit {k}: expected {exp_logits[k]}, got {result.logits[k]}"
        elif result.pred_class != int(ref.classes[i]):
            problem = f"class: expected {int(ref.classes[i])}, got {result.pred_class}"
        elif result.overflow:
            problem = "the core's overflow flag is set"
        if problem:
            mismatches += 1
            print(f"run: image {i}: {problem}", flush=True)
        per_image.append({"image": i, "class": result.pred_class, "label": int(labels[i]), "cycles": result.cycles,
                          "round_trip_s": seconds, "mismatch": problem})
    wall = time.perf_counter() - t0
    n = len(per_image)
    cycles = np.array([r["cycles"] for r in per_image], dtype=float)
    rtt = np.array([r["round_trip_s"] for r in per_image])
    summary = {
        "images": n, "mismatches": mismatches, "link_test": cases,
        "accuracy": float(np.mean([r["class"] == r["label"] for r in per_image])),
        "cycles_mean": float(cycles.mean()), "latency_us_mean": float(cycles.mean() / ident.clock_hz * 1e6),
        "round_trip_ms_mean": float(rtt.mean() * 1e3), "images_per_s": n / wall,
        "clock_hz": ident.clock_hz, "baud": ident.baud, "model_sha256": model.sha256, "port": args.port,
        "per_image": per_image,
    }
    print(f"run: {n} images, {n - mismatches} bit-exact with golden, {mismatches} mismatches; accuracy "
          f"{100 * summary['accuracy']:.2f} %")
    print(f"run: device {summary['cycles_mean']:.0f} cycles per inference (mean) = {summary['latency_us_mean']:.1f} "
          f"µs at {ident.clock_hz / 1e6:g} MHz; host round trip {summary['round_trip_ms_mean']:.2f} ms (mean); "
          f"throughput {summary['images_per_s']:.1f} images/s")
    out = args.out or os.path.join(base, "board", "run.json")
    atomic_write(out, json.dumps(summary, indent=1))
    print(f"run: wrote {out}")
    return 1 if mismatches else 0
