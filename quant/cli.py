"""`python flow.py train-quant`: QAT, BN folding + fine-tune, integer and QONNX export, metrics.

Writes under build/<preset>/ (or --out): checkpoint.pt (every epoch), intmodel.zip, model.qonnx.onnx,
testset.npz, metrics.json. Every artifact is written to a temp file and renamed, and every user error is found
before anything is written, so a failed run leaves earlier artifacts as they were.

`--eval-model PATH` instead checks an existing integer model (and optionally a --testset file): it loads and
verifies the file, checks the hardware limits, and compares the torch integer inference with golden.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from flowerrors import FlowError

from . import presets

FIRING_KEYS = ("spikes", "pooled")
TRAIN_THREADS = 2       # torch intra-op threads for training by default (see main)


def add_arguments(parser) -> None:
    parser.add_argument("--preset", default="digits", help=f"one of: {', '.join(presets.PRESETS)} (default digits)")
    per_preset = {p: presets.resolve(p) for p in presets.PRESETS}

    def by_preset(value) -> str:    # a default that depends on the preset, shown for each
        return "default by preset: " + ", ".join(f"{p} {value(*per_preset[p])}" for p in per_preset)
    parser.add_argument("--epochs", type=int,
                        help=f"QAT epochs (phase 1; {by_preset(lambda m, t: t['epochs'])})")
    finetune = by_preset(lambda m, t: t["finetune_epochs"])
    parser.add_argument("--finetune-epochs", type=int, help=f"fine-tune epochs with BN folded (phase 2; {finetune})")
    parser.add_argument("--weight-bits", type=int,
                        help=f"weight bit width, 8 and 4 are tested ({by_preset(lambda m, t: m['weight_bits'])})")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="train on the CPU or a CUDA GPU (default: cpu)")
    parser.add_argument("--restart", action="store_true",
                        help="start over even when a checkpoint of the same settings exists (by default a rerun "
                             "continues from it); the old checkpoint is kept as checkpoint.prev.pt")
    parser.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for old scripts
    parser.add_argument("--checkpoint-dir", metavar="DIR",
                        help="where checkpoint.pt lives (default: the output directory); put it outside the work "
                             "tree, e.g. ~/.cache/spikingformer-hw/fashion-mnist, for runs that span sessions")
    parser.add_argument("--threads", type=int, default=TRAIN_THREADS,
                        help=f"torch CPU threads (default {TRAIN_THREADS}); the count changes how float sums split, so "
                             "the same seed trains a slightly different model with another count")
    parser.add_argument("--no-compile", action="store_true",
                        help="train with eager LIF kernels instead of torch.compile's fused loops (about 1.5x slower; "
                             "needs no C++ compiler)")
    parser.add_argument("--data-dir", help="dataset directory (Fashion-MNIST IDX files or cifar-10-batches-py)")
    parser.add_argument("--build", default="build", help="build directory (default: the project's build/)")
    parser.add_argument("--out", help="output directory (default build/<preset>)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a model or training setting, e.g. --set embed_dim=32 (repeatable)")
    parser.add_argument("--no-qonnx", action="store_true", help="skip the QONNX export")
    parser.add_argument("--ship", action="store_true",
                        help="after training, copy the model, metrics and training log into models/<preset>/ (the zoo)")
    parser.add_argument("--eval-model", metavar="PATH", help="check an existing intmodel.zip instead of training")
    parser.add_argument("--testset", metavar="PATH", help="with --eval-model: the images/labels .npz to run")


def _atomic_text(path: str, text: str) -> None:
    from golden.artifacts import atomic_write
    atomic_write(path, text)      # temp file + rename, mode 0644


def check_dataset(model_cfg: dict, images: np.ndarray, what: str) -> None:
    """The data must match the model's input shape and bit width (fail before any training)."""
    want = (model_cfg["in_channels"], *model_cfg["image_size"])
    if tuple(images.shape[1:]) != want:
        raise FlowError(f"the {what} images are {tuple(images.shape[1:])} but the model expects {want}; set "
                        "in_channels/image_size to match (e.g. --set image_size=[28,28]) or pick the matching preset.")
    top = (1 << model_cfg["input_bits"]) - 1
    lo, hi = int(images.min()), int(images.max())
    if lo < 0 or hi > top:
        raise FlowError(f"the {what} pixels span {lo}..{hi} but input_bits={model_cfg['input_bits']} allows 0..{top}; "
                        f"raise input_bits (e.g. --set input_bits={max(1, hi.bit_length())}).")


def firing_rates(trace: dict) -> dict:
    return {k: float(np.mean(v)) for k, v in trace.items() if k.rsplit(".", 1)[-1].endswith(FIRING_KEYS)}


# Images per golden/torch comparison chunk: the two whole-model traces of 10,000 Fashion-MNIST images held at once
# need over 24 GB (the export was OOM-killed); 256 images need about 0.6 GB.
EVAL_CHUNK = 256


def evaluate_intmodel(model, images, labels, log=None, chunk: int = EVAL_CHUNK) -> dict:
    """Torch integer inference vs golden on a test set, in chunks of `chunk` images: accuracy, firing rates (each
    layer's mean over all images), the first mismatch (if any, with the image it is in)."""
    from golden import inference
    from golden.compare import first_mismatch

    from . import int_infer

    log = log or sys.stderr
    golden_s = torch_s = 0.0
    classes, mismatch, rate_sums = [], None, {}
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk]
        t0 = time.perf_counter()
        ref = inference.run(model, part, trace=True)
        t1 = time.perf_counter()
        logits, trace = int_infer.run(model, part, trace=True)
        golden_s, torch_s = golden_s + t1 - t0, torch_s + time.perf_counter() - t1
        if mismatch is None:
            where = first_mismatch(ref.trace, trace, inference.layer_order(model))
            if where is not None:
                mismatch = f"test images {start}-{start + len(part) - 1}: {where}"
        classes.append(int_infer.classify(logits))
        for key, rate in firing_rates(ref.trace).items():    # every layer's array scales with the chunk's size
            rate_sums[key] = rate_sums.get(key, 0.0) + rate * len(part)
        if len(images) > chunk:
            print(f"integer inference: {start + len(part)}/{len(images)} images", file=log, flush=True)
    classes = np.concatenate(classes) if classes else np.zeros(0, dtype=np.int64)
    print(f"integer inference on {len(images)} images: golden {golden_s:.1f} s, torch {torch_s:.1f} s; "
          f"{'bit-exact' if mismatch is None else 'MISMATCH: ' + mismatch}", file=log)
    return {
        "int_test_accuracy": float(np.mean(classes == labels)) if len(labels) else 0.0,
        "golden_equals_torch": mismatch is None,
        "first_mismatch": mismatch,
        "per_layer_firing_rate": {k: v / len(images) for k, v in rate_sums.items()},
    }


def eval_model(args) -> int:
    from golden.intmodel import load, load_testset
    from golden.widths import check_hw_limits

    model = load(args.eval_model)
    check_hw_limits(model)
    if args.testset:
        images, labels = load_testset(args.testset)
    else:
        model_cfg, train_cfg = presets.resolve(args.preset, args.set)
        from . import data
        _, _, images, labels = data.load(train_cfg["dataset"], args.data_dir)
    model.check_images(images)
    result = evaluate_intmodel(model, images, labels)
    print(json.dumps({k: v for k, v in result.items() if k != "per_layer_firing_rate"}, indent=1))
    if not result["golden_equals_torch"]:
        raise FlowError(f"torch integer inference disagrees with golden ({result['first_mismatch']}); "
                        "report this as a bug in quant/int_infer.py.")
    return 0


def main(args) -> int:
    if args.eval_model:
        return eval_model(args)
    model_cfg, train_cfg = presets.resolve(args.preset, args.set, args.weight_bits, args.epochs, args.finetune_epochs)
    from golden.artifacts import preset_dir
    out = args.out or preset_dir(args.preset, args.build)
    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise FlowError("--device cuda was given but torch sees no CUDA device; use --device cpu.")

    from . import data
    t_start = time.perf_counter()
    xtr, ytr, xte, yte = data.load(train_cfg["dataset"], args.data_dir)
    check_dataset(model_cfg, xtr, "training")
    check_dataset(model_cfg, xte, "test")
    xtr, ytr, xva, yva = data.validation_split(xtr, ytr, train_cfg["val_size"])

    import torch
    # The intra-op thread count decides how torch's CPU kernels split their float sums, so it changes the trained
    # model (1 vs 2 threads: different weights from the first epoch). Fixed here, whatever the core count or
    # OMP_NUM_THREADS, so every machine with the same CPU kernels trains the same model from the same seed.
    if args.threads < 1:
        raise FlowError(f"--threads {args.threads} is invalid; give 1 or more (default {TRAIN_THREADS}).")
    torch.set_num_threads(args.threads)
    from .export import export_qonnx, to_intmodel
    from .model import Spikingformer, lif_kernels_in_use, parameter_count, use_compiled_lif, weight_count
    from .train import train

    use_compiled_lif(not args.no_compile)

    from . import distributed
    distributed.init(args.device)     # under torchrun: join the process group (docs/cluster.md)
    if distributed.active():
        print(f"torchrun: rank {distributed.rank()} of {distributed.world_size()} "
              f"({'nccl' if args.device == 'cuda' else 'gloo'}); rank 0 writes the artifacts", file=sys.stderr)
    params = parameter_count(Spikingformer(model_cfg))
    ckpt_dir = os.path.expanduser(args.checkpoint_dir) if args.checkpoint_dir else out
    print(f"preset {args.preset}: {params:,} parameters, {len(xtr)} training / {len(xva)} validation / {len(xte)} "
          f"test images, output {out}, checkpoint {os.path.join(ckpt_dir, 'checkpoint.pt')}", file=sys.stderr)
    result = train(model_cfg, train_cfg, (xtr, ytr, xva, yva, xte, yte), ckpt_dir, args.device, args.restart,
                   log=None if distributed.is_main() else open(os.devnull, "w"))
    if not distributed.is_main():
        distributed.finish()
        return 0

    intmodel = to_intmodel(result.model, {"preset": args.preset}, head_weight_bits=train_cfg["head_weight_bits"])
    if train_cfg["head_weight_bits"]:
        print(f"export: {intmodel.meta['head_saturated']} of {intmodel.arrays['head.w'].size} head weights saturated "
              f"at {train_cfg['head_weight_bits']} bits", file=sys.stderr)
    ev = evaluate_intmodel(intmodel, xte, yte)

    from golden.intmodel import save, save_testset
    qonnx_path = os.path.join(out, "model.qonnx.onnx")
    qonnx_note = None
    if not args.no_qonnx:
        qonnx_note = export_qonnx(result.model, qonnx_path)
    digest = save(intmodel, os.path.join(out, "intmodel.zip"))
    save_testset(os.path.join(out, "testset.npz"), xte, yte)
    metrics = {
        "preset": args.preset,
        "config": model_cfg,
        "train_config": train_cfg,
        "float_test_accuracy": result.qat_test_accuracy,
        "folded_float_test_accuracy": result.folded_test_accuracy,
        **ev,
        "params": params,
        "weights": weight_count(result.model),
        "weight_bits": model_cfg["weight_bits"],
        "head_saturated": intmodel.meta.get("head_saturated", 0),
        "train_seconds": round(result.train_seconds, 2),
        "epoch_seconds": result.epoch_seconds,
        # the exported (best-validation) fine-tune epoch's validation accuracy
        "val_accuracy": max((h["val_accuracy"] for h in result.history
                             if h.get("phase") == "finetune" and h.get("val_accuracy") is not None), default=None),
        "val_images": len(xva),
        "test_images": len(xte),
        "train_threads": args.threads,
        "lif_kernels": lif_kernels_in_use(),
        "total_seconds": round(time.perf_counter() - t_start, 2),
        "intmodel_sha256": digest,
        "qonnx": qonnx_note and {"path": qonnx_path, "contents": qonnx_note},
        "history": result.history,
    }
    _atomic_text(os.path.join(out, "metrics.json"), json.dumps(metrics, indent=1, sort_keys=True) + "\n")
    print(f"float QAT {100 * metrics['float_test_accuracy']:.2f}%, folded {100 * result.folded_test_accuracy:.2f}%, "
          f"integer {100 * ev['int_test_accuracy']:.2f}% on {len(xte)} test images; wrote {out}/", file=sys.stderr)
    if not ev["golden_equals_torch"]:
        raise FlowError(f"torch integer inference disagrees with golden ({ev['first_mismatch']}); "
                        "report this as a bug in quant/int_infer.py.")
    if args.ship:
        from .zoo import ship
        ship(args.preset, out)
    distributed.finish()
    return 0
