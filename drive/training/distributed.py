"""Processes and devices: one process, or DDP ranks started by torchrun (or any launcher that sets the
usual environment: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).

    torchrun --nproc_per_node=N -m drive train --config launch/train_default.yaml --data D --out O

Backend: NCCL on CUDA (one GPU per local rank), gloo on CPU. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands.

    Attributes:
        rank: global rank (0 without DDP).
        world_size: number of ranks (1 without DDP).
        local_rank: rank on this machine (selects the GPU).
        device: the device this rank computes on.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, metrics and the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """`auto` -> CUDA (GPU `local_rank`) when available, else CPU; `cuda` without a GPU is an error."""
    if preference not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {preference!r}")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA GPU (use device=auto or cpu)")
    if preference == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def init_distributed(device_preference: str = "auto") -> DistContext:
    """Join the process group when launched as several ranks (WORLD_SIZE > 1); else a one-process context.

    Also usable when the caller already initialised the group (tests spawning ranks themselves).
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        return DistContext(rank, world, local_rank, resolve_device(device_preference, local_rank))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local_rank)
    if world <= 1:
        return DistContext(device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, device)


def shutdown_distributed(clean: bool = True) -> None:
    """Leave the process group (no-op without one).

    Args:
        clean: the run ended normally on this rank: wait for every rank first, since tearing gloo down
            while another rank is still in a collective aborts that rank ("terminate called without an
            active exception"). After an error, leave at once rather than wait for ranks that may not come.
    """
    if dist.is_available() and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum `tensor` over the ranks, in place (returned for chaining); unchanged for one process."""
    if ctx.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op for one process)."""
    if ctx.distributed:
        dist.barrier()


def default_threads(ctx: DistContext) -> int:
    """CPU threads per process: the cores shared by the ranks on this machine (at least 1)."""
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(ctx.world_size)))
    return max(1, (os.cpu_count() or 1) // max(local_world, 1))
