"""Two-phase training: QAT with BN, then BN folded + weights re-quantised + fine-tune (SPEC §3).

Deterministic on CPU (seeded init, per-epoch seeded shuffles, deterministic algorithms), a checkpoint after
every epoch (atomic), and --resume continues from the last finished epoch with identical results.
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from golden.errors import FlowError

from .model import Spikingformer, fold

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainResult:
    model: Spikingformer          # the folded, fine-tuned model (what is exported)
    qat_test_accuracy: float      # phase 1 (float QAT with BN) accuracy on the test set
    folded_test_accuracy: float   # phase 2 (folded, quantised bias) accuracy on the test set
    train_seconds: float
    history: list


class ProgressBar:
    """One line per epoch on stderr, redrawn with \\r while the epoch runs."""

    def __init__(self, label: str, steps: int, stream=None, width: int = 24):
        self.label, self.steps, self.stream, self.width = label, steps, stream or sys.stderr, width
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def update(self, step: int, loss: float, acc: float, final: bool = False):
        if not (self.tty or final):
            return
        done = int(self.width * step / max(1, self.steps))
        bar = "#" * done + "." * (self.width - done)
        self.stream.write(f"\r{self.label} [{bar}] {step}/{self.steps} loss {loss:.4f} acc {100 * acc:5.1f}%")
        if final:
            self.stream.write("\n")
        self.stream.flush()


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
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".pt")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str, model_cfg: dict, train_cfg: dict) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise FlowError(f"checkpoint {path} is unreadable ({type(exc).__name__}); delete it or run without "
                        "--resume to start over.") from None
    if state.get("model_config") != model_cfg or state.get("train_config") != train_cfg:
        raise FlowError(f"checkpoint {path} was trained with different settings; rerun with the same --preset/--set "
                        "options or drop --resume to start over.")
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


def _epoch(model, opt, sched, x, y, train_cfg, generator, bar: ProgressBar):
    model.train()
    order = torch.randperm(len(x), generator=generator)
    bs = train_cfg["batch_size"]
    steps = math.ceil(len(x) / bs)
    total_loss, correct, seen = 0.0, 0, 0
    for step in range(steps):
        idx = order[step * bs:(step + 1) * bs]
        xb, yb = random_shift(x[idx], train_cfg["shift_augment"], generator), y[idx]
        logits = model(xb)
        loss = F.cross_entropy(logits, yb, label_smoothing=train_cfg["label_smoothing"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total_loss += float(loss.detach()) * len(idx)
        correct += int((logits.argmax(1) == yb).sum())
        seen += len(idx)
        bar.update(step + 1, total_loss / seen, correct / seen)
    bar.update(steps, total_loss / seen, correct / seen, final=True)
    return total_loss / seen, correct / seen


def train(model_cfg: dict, train_cfg: dict, data, out_dir: str, device: str = "cpu", resume: bool = False,
          log=None) -> TrainResult:
    """Run (or resume) both phases; `data` is (train_x, train_y, test_x, test_y) as int64 numpy arrays."""
    log = log or sys.stderr
    set_determinism(train_cfg["seed"], device)
    xtr, ytr, xte, yte = (torch.as_tensor(a) for a in data)
    xtr, xte = xtr.float().to(device), xte.float().to(device)
    ytr, yte = ytr.long().to(device), yte.long().to(device)
    steps = math.ceil(len(xtr) / train_cfg["batch_size"])
    e1, e2 = train_cfg["epochs"], train_cfg["finetune_epochs"]
    ckpt_path = os.path.join(out_dir, CHECKPOINT)

    state = None
    if resume and os.path.exists(ckpt_path):
        state = load_checkpoint(ckpt_path, model_cfg, train_cfg)
        print(f"resuming from {ckpt_path}: phase {state['phase']}, {state['epoch']} epoch(s) done", file=log)
    elif resume:
        print(f"no checkpoint at {ckpt_path}; starting from scratch", file=log)

    history = state["history"] if state else []
    seconds = state["train_seconds"] if state else 0.0
    qat_acc = state.get("qat_test_accuracy") if state else None

    def checkpoint(phase, epoch, model, opt, sched):
        save_checkpoint(ckpt_path, {
            "phase": phase, "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(), "history": history,
            "train_seconds": seconds, "qat_test_accuracy": qat_acc,
            "model_config": model_cfg, "train_config": train_cfg})

    def restore(phase, model, opt, sched) -> int:
        """Load the checkpoint's state if it belongs to `phase`; returns the number of epochs already done."""
        if not (state and state["phase"] == phase):
            return 0
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        return state["epoch"]

    def run_phase(phase, label, model, opt, sched, start, epochs, seed_offset):
        nonlocal seconds
        for epoch in range(start, epochs):
            t0 = time.perf_counter()
            # Shuffle and augmentation depend only on (seed, phase, epoch): a resumed run repeats them exactly.
            g = torch.Generator().manual_seed(train_cfg["seed"] * 1_000_003 + seed_offset + epoch)
            bar = ProgressBar(f"{label} epoch {epoch + 1:3d}/{epochs}", steps, log)
            loss, acc = _epoch(model, opt, sched, xtr, ytr, train_cfg, g, bar)
            seconds += time.perf_counter() - t0
            history.append({"phase": phase, "epoch": epoch + 1, "loss": loss, "train_accuracy": acc})
            checkpoint(phase, epoch + 1, model, opt, sched)

    # ---------------------------------------------------------------- phase 1: QAT with BN
    if state is None or state["phase"] == "qat":
        qat = Spikingformer(model_cfg).to(device)
        opt, sched = make_optimizer(qat, train_cfg["lr"], train_cfg["weight_decay"], e1 * steps,
                                    train_cfg["warmup_epochs"] * steps)
        start = restore("qat", qat, opt, sched)
        run_phase("qat", "QAT      ", qat, opt, sched, start, e1, 0)
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
    start = restore("finetune", model, opt, sched)
    if start == 0:
        checkpoint("finetune", 0, model, opt, sched)
    run_phase("finetune", "fine-tune", model, opt, sched, start, e2, 500_000)
    model.eval()
    folded_acc = evaluate(model, xte, yte)
    print(f"folded float test accuracy {100 * folded_acc:.2f}%", file=log)
    return TrainResult(model.cpu(), float(qat_acc), folded_acc, seconds, history)
