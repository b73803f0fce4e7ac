"""Data-parallel training under torchrun: `torchrun --nproc_per_node=N flow.py train-quant ...`.

torchrun starts N processes with RANK / WORLD_SIZE / MASTER_ADDR set; each process trains the same model on its
share of every batch and DistributedDataParallel averages the gradients (gloo on CPU, NCCL on CUDA), so all ranks
hold the same weights after every step. Every rank draws the same shuffle and augmentation (they are seeded by
epoch), augments the whole batch and keeps its slice, so the batches are the single-process batches split N ways.
Rank 0 alone writes checkpoints and artifacts; the others wait for it at the end. Without torchrun (WORLD_SIZE
unset or 1) every function here is a no-op.
"""
from __future__ import annotations

import os

import torch


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def active() -> bool:
    return world_size() > 1


def is_main() -> bool:
    return rank() == 0


def init(device: str = "cpu") -> None:
    """Join the torchrun process group (once); nothing without torchrun."""
    if not active() or torch.distributed.is_initialized():
        return
    backend = "nccl" if device == "cuda" else "gloo"
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend=backend)


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model for the training forward/backward: DistributedDataParallel when distributed."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel
    # BN running statistics are broadcast from rank 0 before each forward, so every rank folds the same ones
    return DistributedDataParallel(model, broadcast_buffers=True)


def local(batch: torch.Tensor) -> torch.Tensor:
    """This rank's slice of a batch (rank r takes r, r + N, r + 2N, ...)."""
    return batch[rank()::world_size()] if active() else batch


def barrier() -> None:
    if active() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def finish() -> None:
    """Wait for rank 0's artifacts, then leave the process group."""
    if active() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
