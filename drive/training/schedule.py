"""Learning-rate schedules as a factor of the base rate per optimiser step (for torch's LambdaLR).

A linear warm-up over `warmup_steps` (from 1/warmup to 1), then:
- `cosine`: half a cosine from 1 down to `min_lr_frac` at `total_steps`;
- `step`: × `step_gamma` every `step_every` steps;
- `constant`: 1.
The factor depends on the step only, so a resumed run recomputes it exactly.
"""

from __future__ import annotations

import math

from drive.training.train_config import OptimConfig


def lr_factor(step: int, optim: OptimConfig, total_steps: int) -> float:
    """Multiplier of the base learning rates for optimiser step `step` (0-based).

    Args:
        step: optimiser steps already taken.
        optim: the schedule's settings.
        total_steps: steps of the whole run (the cosine reaches its floor there).

    Returns:
        A factor in (0, 1].

    Example:
        >>> from drive.training.train_config import OptimConfig
        >>> cfg = OptimConfig(schedule="cosine", warmup_steps=2, min_lr_frac=0.0)
        >>> [round(lr_factor(s, cfg, 6), 3) for s in range(6)]
        [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """
    warmup = optim.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    after = step - warmup
    if optim.schedule == "cosine":
        progress = min(after / max(total_steps - warmup, 1), 1.0)
        return optim.min_lr_frac + (1.0 - optim.min_lr_frac) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if optim.schedule == "step":
        return optim.step_gamma ** (after // optim.step_every)
    return 1.0
