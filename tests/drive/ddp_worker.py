"""A rank of the 2-process gloo DDP test (spawned by torch.multiprocessing; module-level to pickle)."""

from __future__ import annotations

import torch
import torch.distributed as dist


def first_step_gradients(
    rank: int, world_size: int, init_file: str, config_dict: dict, out_file: str
) -> None:
    """Join the group, take the first batch of this rank's loader, backward, save rank 0's gradients."""
    from common.strict_config import load_config
    from drive.training.data import AugmentedWindows
    from drive.training.distributed import DistContext
    from drive.training.train_config import TrainConfig
    from drive.training.trainer import Trainer
    from tests.drive.bar_drives import BarWindows

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        config = load_config(TrainConfig, config_dict)
        data = AugmentedWindows(BarWindows(12, config.data.window), config.augment, config.seed)
        ctx = DistContext(rank=rank, world_size=world_size, local_rank=rank, device=torch.device("cpu"))
        trainer = Trainer(config, data, ctx=ctx)
        trainer.sampler.set_epoch(0)
        frames, labels = next(iter(trainer.loader))
        trainer.optimizer.zero_grad(set_to_none=True)
        loss = trainer.backward(frames, labels)
        grads = {n: p.grad.clone() for n, p in trainer.policy.named_parameters() if p.grad is not None}
        if rank == 0:
            torch.save({"loss": loss, "grads": grads, "windows": frames.shape[0]}, out_file)
        del trainer  # the DDP reducer's hooks go before the group they use
        dist.barrier()  # no rank tears gloo down while the other is still using it
    finally:
        dist.destroy_process_group()
