"""The model zoo: trained integer models shipped under models/<preset>/, so the flow runs without retraining.

A zoo entry is intmodel.zip (its content hash is checked by golden's loader), metrics.json (what training
measured, including `intmodel_sha256`, which must match the model) and train-log.txt (the per-epoch history).
`provide()` puts an entry into build/<preset>/ when that folder has no model of its own, together with the test
set the later stages read (rebuilt from the dataset, which is not shipped). `ship()` writes an entry from a
finished training run (`flow.py train-quant --ship`).

numpy only (no torch): flow.py calls provide() before stages that must start fast.
"""
from __future__ import annotations

import json
import os
import shutil
import sys

from flowerrors import FlowError
from golden.artifacts import atomic_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO = os.path.join(ROOT, "models")
FILES = ("intmodel.zip", "metrics.json", "train-log.txt")


def entry(preset: str) -> str | None:
    """The zoo folder of a preset, or None when the project ships no model for it."""
    folder = os.path.join(ZOO, preset)
    return folder if os.path.isfile(os.path.join(folder, "intmodel.zip")) else None


def check(folder: str):
    """Load and verify a zoo entry: (IntModel, metrics). The model's content hash must be the one training wrote."""
    from golden.intmodel import load
    model = load(os.path.join(folder, "intmodel.zip"))
    try:
        metrics = json.loads(open(os.path.join(folder, "metrics.json")).read())
    except (OSError, ValueError) as exc:
        raise FlowError(f"{folder}/metrics.json is unreadable ({type(exc).__name__}); restore it with "
                        "`git checkout -- models/`.") from None
    if metrics.get("intmodel_sha256") != model.sha256:
        raise FlowError(f"{folder}/intmodel.zip (sha256 {model.sha256[:12]}) is not the model its metrics.json "
                        f"describes ({str(metrics.get('intmodel_sha256'))[:12]}); restore both with "
                        "`git checkout -- models/`.")
    return model, metrics


def _copy(src: str, dst: str) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def provide(preset: str, build: str = "build", data_dir: str | None = None, log=None) -> bool:
    """If build/<preset>/ has no intmodel.zip and the zoo has one, install it there (model, metrics, test set).
    Returns True when it did. The note goes to stdout (progress, like the stages'), so a later error stays the
    only line on stderr."""
    log = log or sys.stdout
    target = os.path.join(build, preset)
    if os.path.exists(os.path.join(target, "intmodel.zip")):
        return False
    folder = entry(preset)
    if folder is None:
        return False
    model, metrics = check(folder)
    from . import data
    dataset = metrics.get("train_config", {}).get("dataset", preset)
    _, _, images, labels = data.load(dataset, data_dir)
    model.check_images(images)
    from golden.intmodel import save_testset
    try:
        os.makedirs(target, exist_ok=True)
        save_testset(os.path.join(target, "testset.npz"), images, labels)
        for name in ("metrics.json", "intmodel.zip"):    # the model last: its presence marks a complete install
            _copy(os.path.join(folder, name), os.path.join(target, name))
    except OSError as exc:
        raise FlowError(f"cannot write {target} ({exc.strerror or exc}); make the build folder writable.") from None
    print(f"using the shipped model {os.path.relpath(folder, ROOT)}/intmodel.zip (sha256 {model.sha256[:12]}, "
          f"integer test accuracy {100 * metrics.get('int_test_accuracy', 0):.2f}%); "
          f"`python flow.py train-quant --preset {preset}` retrains it", file=log)
    return True


def train_log(metrics: dict) -> str:
    """The per-epoch history as a plain table (what reviewers read in the zoo)."""
    seconds = {(e["phase"], e["epoch"]): e["seconds"] for e in metrics.get("epoch_seconds", [])}
    lines = [f"# {metrics['preset']}: {metrics['params']:,} parameters, {metrics['weight_bits']}-bit weights, "
             f"trained in {metrics['train_seconds'] / 60:.1f} min",
             "phase     epoch  loss    train_acc  val_acc  seconds"]
    for h in metrics["history"]:
        if "epoch" not in h:
            lines.append(f"# {h['phase']}: " + ", ".join(f"{k} {v:.4f}" for k, v in h.items() if k != "phase"))
            continue
        val = f"{100 * h['val_accuracy']:7.2f}%" if h.get("val_accuracy") is not None else "       -"
        lines.append(f"{h['phase']:9s} {h['epoch']:5d}  {h['loss']:.4f}  {100 * h['train_accuracy']:8.2f}%  {val}  "
                     f"{seconds.get((h['phase'], h['epoch']), float('nan')):7.1f}")
    lines.append(f"# test accuracy: float QAT {100 * metrics['float_test_accuracy']:.2f}%, folded "
                 f"{100 * metrics['folded_float_test_accuracy']:.2f}%, integer {100 * metrics['int_test_accuracy']:.2f}%"
                 f" on {metrics.get('test_images', '?')} images; golden == torch: {metrics['golden_equals_torch']}")
    return "\n".join(lines) + "\n"


def ship(preset: str, out: str, log=None) -> str:
    """Copy a finished run's model and metrics from `out` into models/<preset>/ with its training log."""
    log = log or sys.stderr
    folder = os.path.join(ZOO, preset)
    os.makedirs(folder, exist_ok=True)
    metrics = json.loads(open(os.path.join(out, "metrics.json")).read())
    for name in ("intmodel.zip", "metrics.json"):
        _copy(os.path.join(out, name), os.path.join(folder, name))
    with open(os.path.join(folder, "train-log.txt"), "w") as f:
        f.write(train_log(metrics))
    check(folder)
    print(f"shipped {os.path.relpath(folder, ROOT)}/ (commit it to update the zoo)", file=log)
    return folder
