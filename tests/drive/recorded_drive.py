"""Test helpers: a short drive recorded by the project's own embedded simulator, and a fresh checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch

from drive.closed_loop.drivers import ExpertDriver
from drive.closed_loop.loop import EpisodeLimits, run_episode
from sim.expert import PerturbationConfig
from sim.registry import SimSpec


def record_expert_drive(path: Path, frames: int = 40, seed: int = 0, track: str = "oval") -> Path:
    """An expert drive with recovery perturbations (executed ≠ label) of `frames` frames at `path`."""
    spec = SimSpec().replace(track=track)
    with spec.build() as sim:
        run_episode(
            sim,
            ExpertDriver(PerturbationConfig()),
            seed=seed,
            limits=EpisodeLimits(max_steps=frames - 1),
            record_to=path,
            meta=spec.meta(seed),
        )
    return path


def make_checkpoint(path: Path, name: str = "ncp-ltc", seed: int = 1) -> str:
    """A freshly initialised policy `name` (torch seed `seed`) saved at `path`."""
    from policies.checkpoint import save_checkpoint
    from policies.registry import build_policy

    torch.manual_seed(seed)
    return str(save_checkpoint(path, build_policy(name)))
