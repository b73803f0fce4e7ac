"""`python flow.py seeds`: how much the accuracy depends on the training seed.

Trains the preset once per seed (`flow.py train-quant --set seed=S --out build/<preset>/seeds/seed<S> --no-qonnx`,
one run at a time, each in its own process) and writes the accuracies of every run with their mean ± sample standard
deviation to build/<preset>/seeds/seeds.json (`--out` to store it elsewhere; the digits result in the README is
docs/bench/digits_seeds.json). A seed whose run already finished with the same settings is not trained again, so an
interrupted sweep resumes.

What a seed fixes: the initial weights, the shuffle order and the augmentation of every epoch (quant/train.py), so
on one machine a seed gives byte-identical models run after run. What it does not fix: torch's CPU kernels pick their
vector code (AVX2, AVX-512, NEON) and blocking for the CPU at hand, which changes the rounding of float sums, so
another CPU model can train a different model (and accuracy) from the same seed; the file records the CPU capability
torch used, torch's version and the thread count.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time

from golden.artifacts import PROJECT, atomic_json, build_root
from flowerrors import FlowError

KEYS = (("float_test_accuracy", "float QAT (BN)"), ("folded_float_test_accuracy", "float, BN folded"),
        ("int_test_accuracy", "integer model"))


def add_arguments(parser) -> None:
    parser.add_argument("--preset", default="digits", help="model preset; reads build/<preset>/ (default: digits)")
    parser.add_argument("--build", default="build", help="build directory (default: the project's build/)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                        help="training seeds (default 0 1 2 3 4; seed 0 is the preset's default model)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra train-quant --set override applied to every run")
    parser.add_argument("--out", help="result file (default build/<preset>/seeds/seeds.json)")


def summarise(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def environment() -> dict:
    import torch
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine(), "processor": _cpu_model(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "python": platform.python_version()}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _finished(metrics_path: str, seed: int, overrides: list[str]) -> dict | None:
    try:
        with open(metrics_path) as f:
            m = json.load(f)
    except (OSError, ValueError):
        return None
    if (m.get("train_config") or {}).get("seed") != seed or m.get("seed_sweep_overrides", overrides) != overrides:
        return None
    return m if all(m.get(k) is not None for k, _ in KEYS) else None


def main(args) -> int:
    if len(set(args.seeds)) < 2:
        raise FlowError("a seed sweep needs at least two different seeds; give e.g. --seeds 0 1 2 3 4.")
    if any(s < 0 for s in args.seeds):
        raise FlowError("training seeds are non-negative integers; give e.g. --seeds 0 1 2 3 4.")
    base = os.path.join(build_root(args.build), args.preset, "seeds")
    out = os.path.abspath(args.out or os.path.join(base, "seeds.json"))
    runs = []
    for seed in sorted(set(args.seeds)):
        run_dir = os.path.join(base, f"seed{seed}")
        metrics_path = os.path.join(run_dir, "metrics.json")
        m = _finished(metrics_path, seed, args.set)
        if m is None:
            cmd = [sys.executable, os.path.join(PROJECT, "flow.py"), "train-quant", "--preset", args.preset,
                   "--no-qonnx", "--out", run_dir, "--set", f"seed={seed}"]
            for item in args.set:
                cmd += ["--set", item]
            print(f"seeds: training seed {seed} -> {os.path.relpath(run_dir)}", flush=True)
            t0 = time.time()
            rc = subprocess.run(cmd, cwd=PROJECT).returncode
            if rc != 0:
                raise FlowError(f"training with seed {seed} failed (exit {rc}); see its output above and rerun "
                                f"`python flow.py seeds --preset {args.preset}` (finished seeds are kept).")
            m = _finished(metrics_path, seed, args.set)
            if m is None:
                raise FlowError(f"training with seed {seed} left no usable {metrics_path}; rerun the sweep.")
            print(f"seeds: seed {seed} done in {time.time() - t0:.0f} s", flush=True)
        runs.append({"seed": seed, "intmodel_sha256": m.get("intmodel_sha256"),
                     **{k: m[k] for k, _ in KEYS}, "golden_equals_torch": m.get("golden_equals_torch")})
        result = {"preset": args.preset, "overrides": args.set, "runs": runs,
                  "summary": {k: summarise([r[k] for r in runs]) for k, _ in KEYS} if len(runs) > 1 else None,
                  "environment": environment(),
                  "command": f"python flow.py seeds --preset {args.preset} --seeds "
                             f"{' '.join(map(str, sorted(set(args.seeds))))}"}
        atomic_json(out, result)       # after every seed, so an interrupted sweep keeps what it finished
    for k, label in KEYS:
        s = result["summary"][k]
        print(f"seeds: {label}: {100 * s['mean']:.2f} ± {100 * s['std']:.2f} % over {s['n']} seeds "
              f"(min {100 * s['min']:.2f}, max {100 * s['max']:.2f})")
    print(f"seeds: wrote {os.path.relpath(out)}")
    return 0
