"""Two-phase training: QAT with BN, then BN folded + weights re-quantised + fine-tune (quant/README.md; resuming: docs/fashion-mnist.md).

Deterministic on CPU (seeded init, per-epoch seeded shuffles, deterministic algorithms). A checkpoint is written
atomically after every epoch and, for long epochs, every `SAVE_EVERY_S` seconds within one; rerunning the same
command continues from the newest checkpoint with results identical to an uninterrupted run. `restart=True`
starts over and keeps the previous checkpoint as checkpoint.prev.pt.

Data: (train_x, train_y, val_x, val_y, test_x, test_y). The validation split (possibly empty) is the only set used
for model selection: the fine-tune phase exports its best-validation epoch. The test set is evaluated once per phase.
"""
from __future__ import annotations

import math
import os
import statistics
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from flowerrors import FlowError
from golden.artifacts import atomic_path

from . import distributed
from .model import Spikingformer, fold
from .presets import EXPORT_KEYS, TRAIN_DEFAULTS
from .teacher import Teacher, distillation_loss

CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"
SAVE_EVERY_S = 600.0   # within-epoch checkpoint period: an interruption loses at most this much work


@dataclass
class TrainResult:
    model: Spikingformer          # the folded, fine-tuned model (what is exported)
    qat_test_accuracy: float      # phase 1 (float QAT with BN) accuracy on the test set
    folded_test_accuracy: float   # phase 2 (folded, quantised bias) accuracy on the test set
    train_seconds: float
    history: list
    epoch_seconds: list


class Progress:
    """Progress of one epoch on stderr: redrawn with \\r on a terminal, a line a minute otherwise (logs), and a final
    line with loss, accuracy, validation accuracy, seconds and the ETA of the whole run."""

    def __init__(self, label: str, steps: int, stream=None, width: int = 24, every_s: float = 60.0):
        self.label, self.steps, self.stream, self.width = label, steps, stream or sys.stderr, width
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.every_s, self.last = every_s, time.perf_counter()

    def update(self, step: int, loss: float, acc: float):
        now = time.perf_counter()
        if self.tty:
            done = int(self.width * step / max(1, self.steps))
            bar = "#" * done + "." * (self.width - done)
            self.stream.write(f"\r{self.label} [{bar}] {step}/{self.steps} loss {loss:.4f} acc {100 * acc:5.1f}%")
        elif now - self.last >= self.every_s:
            self.stream.write(f"{self.label} step {step}/{self.steps} loss {loss:.4f} acc {100 * acc:5.1f}%\n")
        else:
            return
        self.last = now
        self.stream.flush()

    def final(self, loss: float, acc: float, val_acc: float | None, seconds: float, eta_s: float):
        val = f" val {100 * val_acc:5.2f}%" if val_acc is not None else ""
        self.stream.write(f"{chr(13) if self.tty else ''}{self.label} loss {loss:.4f} acc {100 * acc:5.1f}%{val} "
                          f"{seconds:6.1f} s/epoch, ETA {_hms(eta_s)}\n")
        self.stream.flush()


ETA_WINDOW = 5   # the phase's last epochs that the estimate reads


def eta_seconds(epoch_seconds: list, phase: str, remaining: int) -> float:
    """Seconds left for `remaining` more epochs: the median of this phase's last ETA_WINDOW epoch times, so that
    one epoch stretched by a pause (a suspended job, a busy machine) does not set the estimate, and a run resumed on
    a quieter (or busier) machine is estimated from how fast it runs now, not from its earlier sessions."""
    times = [e["seconds"] for e in epoch_seconds if e["phase"] == phase][-ETA_WINDOW:]
    return statistics.median(times) * remaining if times else 0.0


def _hms(seconds: float) -> str:
    s = int(round(max(0.0, seconds)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def set_determinism(seed: int, device: str) -> None:
    torch.manual_seed(seed)
    if device == "cpu":
        torch.use_deterministic_algorithms(True)


def cosine_schedule(total_steps: int, warmup_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return factor


def make_optimizer(model, lr: float, weight_decay: float, total_steps: int, warmup_steps: int):
    # timm-style: no weight decay on biases and BN parameters (1-D tensors).
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_schedule(total_steps, warmup_steps))
    return opt, sched


@torch.no_grad()
def evaluate(model, x, y, batch: int = 512) -> float:
    was = model.training
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    model.train(was)
    return correct / max(1, len(x))


def save_checkpoint(path: str, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str, model_cfg: dict, train_cfg: dict) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise FlowError(f"checkpoint {path} is unreadable ({type(exc).__name__}); rerun with --restart to start "
                        "over (the damaged file is kept as checkpoint.prev.pt).") from None
    def training_part(cfg):
        # a key added to the recipe after the checkpoint was written takes its default there
        return {k: v for k, v in {**TRAIN_DEFAULTS, **(cfg or {})}.items() if k not in EXPORT_KEYS}
    if state.get("model_config") != model_cfg or training_part(state.get("train_config")) != training_part(train_cfg):
        raise FlowError(f"checkpoint {path} was trained with different settings; rerun with the same --preset/--set "
                        "options to resume it, or add --restart to start over.")
    return state


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to max_shift pixels in y and x, filling with 0 (a random crop of a
    zero-padded image)."""
    if max_shift <= 0:
        return x
    h, w = x.shape[-2:]
    span = 2 * max_shift + 1
    padded = F.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, span, (len(x),), generator=generator)
    dx = torch.randint(0, span, (len(x),), generator=generator)
    out = torch.empty_like(x)
    for oy in range(span):
        for ox in range(span):
            sel = ((dy == oy) & (dx == ox)).nonzero().flatten()
            out[sel] = padded[sel, :, oy:oy + h, ox:ox + w]
    return out


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the images left-right."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    return torch.where(flip.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)


def augment(x: torch.Tensor, train_cfg: dict, generator: torch.Generator) -> torch.Tensor:
    x = random_shift(x, train_cfg["shift_augment"], generator)
    return random_flip(x, generator) if train_cfg["flip_augment"] else x


def _epoch(model, opt, sched, x, y, train_cfg, generator, bar: Progress, start=None, save=None, teacher=None):
    """One epoch from step `start["step"]` (a mid-epoch checkpoint) or 0. `save(step, running)` is called every
    SAVE_EVERY_S seconds with what a resumed epoch needs. With a teacher (in eval mode), the loss mixes in the
    distillation loss on the same augmented batch, weighted train_cfg["distill"]."""
    model.train()
    order = torch.randperm(len(x), generator=generator)
    bs = train_cfg["batch_size"]
    steps = math.ceil(len(x) / bs)
    first = 0
    total_loss, correct, seen = 0.0, 0, 0
    if start:
        first = start["step"]
        generator.set_state(start["generator"])
        total_loss, correct, seen = start["running"]
    last_save = time.perf_counter()
    for step in range(first, steps):
        idx = order[step * bs:(step + 1) * bs]
        xb, yb = augment(x[idx], train_cfg, generator), y[idx]
        xb, yb = distributed.local(xb), distributed.local(yb)   # torchrun: this rank's slice of the batch
        if train_cfg.get("timestep_loss"):
            per_step = model(xb, per_timestep=True)
            loss = F.cross_entropy(per_step.flatten(0, 1), yb.repeat(len(per_step)),
                                   label_smoothing=train_cfg["label_smoothing"])
            logits = per_step.mean(0)
        else:
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=train_cfg["label_smoothing"])
        if teacher is not None:
            with torch.no_grad():
                soft = teacher(xb)
            alpha = float(train_cfg["distill"])
            loss = (1 - alpha) * loss + alpha * distillation_loss(logits, soft, train_cfg["distill_temperature"])
        logits = logits.detach()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total_loss += float(loss.detach()) * len(yb)
        correct += int((logits.argmax(1) == yb).sum())
        seen += len(yb)
        bar.update(step + 1, total_loss / seen, correct / seen)
        if save and step + 1 < steps and time.perf_counter() - last_save >= SAVE_EVERY_S:
            save(step + 1, {"step": step + 1, "generator": generator.get_state(),
                            "running": (total_loss, correct, seen)})
            last_save = time.perf_counter()
    return total_loss / seen, correct / seen


def train(model_cfg: dict, train_cfg: dict, data, ckpt_dir: str, device: str = "cpu", restart: bool = False,
          log=None) -> TrainResult:
    """Run both phases, continuing from ckpt_dir/checkpoint.pt when it holds a compatible run.

    `data` is (train_x, train_y, val_x, val_y, test_x, test_y) as int64 numpy arrays (val may be empty), or
    (train_x, train_y, test_x, test_y) without a validation split."""
    log = log or sys.stderr
    set_determinism(train_cfg["seed"], device)
    if len(data) == 4:   # (train, test) only: no validation split
        data = (data[0], data[1], data[0][:0], data[1][:0], data[2], data[3])
    xtr, ytr, xva, yva, xte, yte = (torch.as_tensor(a) for a in data)
    xtr, xva, xte = xtr.float().to(device), xva.float().to(device), xte.float().to(device)
    ytr, yva, yte = ytr.long().to(device), yva.long().to(device), yte.long().to(device)
    has_val = len(xva) > 0
    steps = math.ceil(len(xtr) / train_cfg["batch_size"])
    e1, e2 = train_cfg["epochs"], train_cfg["finetune_epochs"]
    ckpt_path = os.path.join(ckpt_dir, CHECKPOINT)

    state = None
    if os.path.exists(ckpt_path):
        if restart:
            if distributed.is_main():
                os.replace(ckpt_path, os.path.join(ckpt_dir, PREVIOUS))
            print(f"--restart: starting over; the previous checkpoint is kept as {PREVIOUS}", file=log)
        else:
            state = load_checkpoint(ckpt_path, model_cfg, train_cfg)
            where = f", {state['partial']['step']}/{steps} steps into the next" if state.get("partial") else ""
            print(f"resuming from {ckpt_path}: phase {state['phase']}, {state['epoch']} epoch(s) done{where} "
                  "(--restart starts over)", file=log)

    history = state["history"] if state else []
    epoch_seconds = state["epoch_seconds"] if state else []   # wall time per epoch (kept out of the history,
                                                              # which is identical run to run)
    seconds = state["train_seconds"] if state else 0.0
    qat_acc = state.get("qat_test_accuracy") if state else None
    best = state.get("best") if state else None   # fine-tune: {"val": acc, "epoch": n, "model": state_dict}
    teacher = None          # the trained teacher (eval mode) once its phase is done; None without distillation

    def checkpoint(phase, epoch, model, opt, sched, partial=None):
        if not distributed.is_main():   # torchrun: rank 0 writes, every rank holds the same state
            return
        save_checkpoint(ckpt_path, {
            "phase": phase, "epoch": epoch, "partial": partial, "model": model.state_dict(),
            "teacher": teacher.state_dict() if teacher is not None else None,
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(),
            "history": history, "epoch_seconds": epoch_seconds, "train_seconds": seconds, "qat_test_accuracy": qat_acc, "best": best,
            "model_config": model_cfg, "train_config": train_cfg})

    def restore(phase, model, opt, sched) -> tuple[int, dict | None]:
        """Load the checkpoint's state if it belongs to `phase`: (epochs done, mid-epoch position or None)."""
        if not (state and state["phase"] == phase):
            return 0, None
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        return state["epoch"], state.get("partial")

    def run_phase(phase, label, model, opt, sched, start, partial, epochs, seed_offset, epochs_after, cfg=None):
        nonlocal seconds, best
        for epoch in range(start, epochs):
            t0 = time.perf_counter()
            spent_before = seconds
            # Shuffle and augmentation depend only on (seed, phase, epoch): a resumed run repeats them exactly.
            g = torch.Generator().manual_seed(train_cfg["seed"] * 1_000_003 + seed_offset + epoch)
            bar = Progress(f"{label} epoch {epoch + 1:3d}/{epochs}", steps, log)

            def save_partial(step, position):
                nonlocal seconds
                seconds = spent_before + time.perf_counter() - t0
                checkpoint(phase, epoch, model, opt, sched, partial=position)

            loss, acc = _epoch(distributed.wrap(model), opt, sched, xtr, ytr, cfg or train_cfg, g, bar,
                               partial if epoch == start else None, save_partial,
                               teacher=teacher if phase != "teacher" else None)
            val_acc = evaluate(model, xva, yva) if has_val else None
            epoch_s = time.perf_counter() - t0
            seconds = spent_before + epoch_s
            history.append({"phase": phase, "epoch": epoch + 1, "loss": loss, "train_accuracy": acc,
                            "val_accuracy": val_acc})
            epoch_seconds.append({"phase": phase, "epoch": epoch + 1, "seconds": round(epoch_s, 2)})
            if phase == "finetune" and has_val and (best is None or val_acc > best["val"]):
                best = {"val": val_acc, "epoch": epoch + 1,
                        "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}
            bar.final(loss, acc, val_acc, epoch_s,
                      eta_seconds(epoch_seconds, phase, epochs - epoch - 1 + epochs_after))
            checkpoint(phase, epoch + 1, model, opt, sched)

    # ---------------------------------------------------------------- phase 0: the distillation teacher
    if train_cfg["distill"]:
        teacher = Teacher(model_cfg).to(device)
        if state is None or state["phase"] == "teacher":
            # its own recipe: the student's augmentation, no label smoothing (which would flatten the soft targets
            # the student learns from), one warm-up epoch
            t_cfg = {**train_cfg, "label_smoothing": 0.0, "timestep_loss": False}
            e0 = train_cfg["teacher_epochs"]
            opt, sched = make_optimizer(teacher, train_cfg["lr"], train_cfg["weight_decay"], e0 * steps, steps)
            start, partial = restore("teacher", teacher, opt, sched)
            trained, teacher = teacher, None      # no teacher for its own epochs (nor in its checkpoints' field)
            run_phase("teacher", "teacher  ", trained, opt, sched, start, partial, e0, 900_000, 0, cfg=t_cfg)
            teacher = trained.eval()
            history.append({"phase": "teacher", "test_accuracy": evaluate(teacher, xte, yte)})
            print(f"teacher (float CNN) test accuracy {100 * history[-1]['test_accuracy']:.2f}%", file=log)
            # the student starts from the RNG state of a run without a teacher: the same seed, the same init
            torch.manual_seed(train_cfg["seed"])
        else:
            teacher.load_state_dict(state["teacher"])
            teacher.eval()

    # ---------------------------------------------------------------- phase 1: QAT with BN
    if state is None or state["phase"] in ("teacher", "qat"):
        qat = Spikingformer(model_cfg).to(device)
        opt, sched = make_optimizer(qat, train_cfg["lr"], train_cfg["weight_decay"], e1 * steps,
                                    train_cfg["warmup_epochs"] * steps)
        start, partial = restore("qat", qat, opt, sched)
        run_phase("qat", "QAT      ", qat, opt, sched, start, partial, e1, 0, e2)
        qat_acc = evaluate(qat, xte, yte)
        print(f"QAT float test accuracy {100 * qat_acc:.2f}%", file=log)
        qat.eval()
        model = fold(qat).to(device)
        history.append({"phase": "fold", "test_accuracy_before_finetune": evaluate(model, xte, yte)})
        print(f"folded, re-quantised model before fine-tune: test accuracy "
              f"{100 * history[-1]['test_accuracy_before_finetune']:.2f}%", file=log)
    else:
        model = Spikingformer(model_cfg, folded=True).to(device)

    # ---------------------------------------------------------------- phase 2: folded fine-tune
    opt, sched = make_optimizer(model, train_cfg["finetune_lr"], train_cfg["weight_decay"], max(1, e2 * steps), 0)
    start, partial = restore("finetune", model, opt, sched)
    if start == 0 and partial is None:
        checkpoint("finetune", 0, model, opt, sched)
    run_phase("finetune", "fine-tune", model, opt, sched, start, partial, e2, 500_000, 0)
    if has_val and best is not None:
        # Model selection on the validation split only: export the best fine-tune epoch.
        model.load_state_dict(best["model"])
        print(f"selected fine-tune epoch {best['epoch']} (validation {100 * best['val']:.2f}%)", file=log)
    model.eval()
    folded_acc = evaluate(model, xte, yte)
    print(f"folded float test accuracy {100 * folded_acc:.2f}%", file=log)
    return TrainResult(model.cpu(), float(qat_acc), folded_acc, seconds, history, epoch_seconds)
