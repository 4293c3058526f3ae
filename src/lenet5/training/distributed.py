"""Distributed training under torchrun: the process group, this process's rank, its random
stream."""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist


def init_distributed(device: torch.device) -> torch.device:
    """Join the process group that torchrun describes (WORLD_SIZE > 1): gloo on CPU, nccl on
    CUDA. Returns the device of this rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group(
        "nccl" if device.type == "cuda" else "gloo", timeout=timedelta(minutes=5)
    )
    return device


def rank_and_world() -> tuple[int, int]:
    """(rank, world size): (0, 1) outside a distributed run."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def seed_rank(seed: int, epoch: int, rank: int) -> None:
    """Distributed runs draw dropout and augmentation from a stream per (seed, epoch, rank), so
    ranks differ from each other and a resumed run draws the same as an uninterrupted one."""
    torch.manual_seed((seed * 100_003 + epoch) * 1_000 + rank)
