"""The training config: strict dataclasses loaded from `launch/train_*.yaml` with `--set a.b=value`.

Every section is a frozen dataclass; `common.strict_config.load_config(TrainConfig, path, overrides)` turns an
unknown key or a wrong type into a `ConfigError` naming the dotted key, and the `__post_init__` checks
below turn a bad value into one. The resolved config (`common.strict_config.to_dict`) is written beside the
run (`config.yaml`) and into every checkpoint.

Values the NCP paper fixes (docs/conventions.md): 16-step windows, Adam, global-norm clipping at 10, a lower
learning rate for the perception than for the head, the exp(α·|y|)-weighted squared error, a zero
initial state, shadow augmentation and no noise injection. The paper's learning rates, α and epoch
counts are not in our reference, so the defaults here are our own choices (see launch/train_paper.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from policies.driving_policy import PolicyConfig


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class DataConfig:
    """Which recordings to train on and how they are cut into windows.

    Attributes:
        root: directory searched (recursively) for episode directories; `drive train --data` sets it.
        window: frames per training sequence (the paper: 16).
        stride: frames between the starts of consecutive windows of one episode.
        val_fraction: fraction of the *episodes* held out for validation (never a split by frame).
        split_seed: seed of the by-episode split.
        workers: DataLoader worker processes per rank (0 loads in the training process).
        cache_mb: decoded-frame cache per loading process, MiB (recordings.dataset.WindowDataset).
    """

    root: str = ""
    window: int = 16
    stride: int = 8
    val_fraction: float = 0.2
    split_seed: int = 0
    workers: int = 0
    cache_mb: int = 1024

    def __post_init__(self) -> None:
        _check(self.window >= 1, f"data.window must be >= 1, got {self.window}")
        _check(self.stride >= 1, f"data.stride must be >= 1, got {self.stride}")
        _check(
            0.0 <= self.val_fraction < 1.0, f"data.val_fraction must be in [0, 1), got {self.val_fraction}"
        )
        _check(self.workers >= 0, f"data.workers must be >= 0, got {self.workers}")
        _check(self.cache_mb >= 0, f"data.cache_mb must be >= 0, got {self.cache_mb}")


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time image augmentation (drive/training/augment.py); never noise injection.

    All parameters are drawn once per window from a generator seeded by (seed, epoch, window index),
    so a window looks the same on every rank, with any number of workers, and after `--resume`.

    Attributes:
        enabled: False turns every augmentation off.
        shadow_probability: chance that a window gets shadow bands at all.
        shadow_max_bands: a shadowed window gets 1..shadow_max_bands bands.
        shadow_light_probability: chance that a band is light (sun patch, glare) rather than dark.
        shadow_strength: (min, max) opacity of a band: a dark band scales pixels by 1 - strength, a light
            one blends them towards white by strength.
        shadow_width_frac: (min, max) band width as a fraction of the image width.
        shadow_speed_frac: largest drift of a band along its normal per frame, fraction of the image
            height (a shadow on the road slides past the camera as the car drives on).
        brightness: largest additive brightness change, fraction of full scale (±).
        contrast: largest relative contrast change around the window's mean grey (±).
        gamma: largest relative gamma change (±); gamma is not undone by per-image standardisation.
        shift_max_px: largest horizontal image shift, camera pixels (0 disables); see augment.py for
            the label correction.
        shift_probability: chance that a window is shifted when shifts are enabled.
        camera_hfov_deg: horizontal field of view of the recorded camera image, degrees (focal length
            for the shift's yaw angle); 70 is the embedded simulator's camera (sim/embedded/pinhole.py).
        shift_lookahead_m: distance over which the corrected label steers back to the original heading, m.
    """

    enabled: bool = True
    shadow_probability: float = 0.5
    shadow_max_bands: int = 2
    shadow_light_probability: float = 0.3
    shadow_strength: tuple[float, float] = (0.2, 0.6)
    shadow_width_frac: tuple[float, float] = (0.05, 0.3)
    shadow_speed_frac: float = 0.02
    brightness: float = 0.15
    contrast: float = 0.2
    gamma: float = 0.2
    shift_max_px: float = 0.0
    shift_probability: float = 0.5
    camera_hfov_deg: float = 70.0
    shift_lookahead_m: float = 10.0

    def __post_init__(self) -> None:
        for name in ("shadow_probability", "shadow_light_probability", "shift_probability"):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, f"augment.{name} must be in [0, 1], got {value}")
        _check(
            self.shadow_max_bands >= 1, f"augment.shadow_max_bands must be >= 1, got {self.shadow_max_bands}"
        )
        for name in ("shadow_strength", "shadow_width_frac"):
            lo, hi = getattr(self, name)
            _check(0.0 <= lo <= hi <= 1.0, f"augment.{name} must be (min, max) with 0 <= min <= max <= 1")
        for name in ("shadow_speed_frac", "brightness", "contrast", "gamma", "shift_max_px"):
            _check(getattr(self, name) >= 0.0, f"augment.{name} must be >= 0, got {getattr(self, name)}")
        _check(self.contrast < 1.0 and self.gamma < 1.0, "augment.contrast and augment.gamma must be < 1")
        _check(0.0 < self.camera_hfov_deg < 180.0, "augment.camera_hfov_deg must be in (0, 180)")
        _check(self.shift_lookahead_m > 0.0, "augment.shift_lookahead_m must be > 0")


@dataclass(frozen=True)
class OptimConfig:
    """Adam with two parameter groups, global-norm clipping and a learning-rate schedule.

    Attributes:
        lr_head: learning rate of the recurrent head (and everything outside the perception).
        lr_perception: learning rate of the perception CNN (the paper: lower than the head's).
        weight_decay: Adam's L2 weight decay, both groups.
        betas: Adam's (beta1, beta2).
        clip_norm: global gradient-norm clipping threshold (the paper: 10).
        schedule: `cosine` (to min_lr_frac at the end), `step` (× step_gamma every step_every steps)
            or `constant`; all after a linear warm-up.
        warmup_steps: optimiser steps of linear warm-up from 0.
        min_lr_frac: the cosine's final learning rate as a fraction of the initial one.
        step_every: steps between decays of the `step` schedule.
        step_gamma: factor of each decay of the `step` schedule.
    """

    lr_head: float = 5e-3
    lr_perception: float = 5e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    clip_norm: float = 10.0
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_steps: int = 20
    min_lr_frac: float = 0.05
    step_every: int = 1000
    step_gamma: float = 0.5

    def __post_init__(self) -> None:
        _check(
            self.lr_head > 0 and self.lr_perception > 0, "optim.lr_head and optim.lr_perception must be > 0"
        )
        _check(self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        _check(self.clip_norm > 0, f"optim.clip_norm must be > 0, got {self.clip_norm}")
        _check(self.warmup_steps >= 0, f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")
        _check(0.0 <= self.min_lr_frac <= 1.0, f"optim.min_lr_frac must be in [0, 1], got {self.min_lr_frac}")
        _check(self.step_every >= 1, f"optim.step_every must be >= 1, got {self.step_every}")
        _check(0.0 < self.step_gamma <= 1.0, f"optim.step_gamma must be in (0, 1], got {self.step_gamma}")
        _check(all(0.0 <= b < 1.0 for b in self.betas), f"optim.betas must be in [0, 1), got {self.betas}")


@dataclass(frozen=True)
class LossConfig:
    """The curve-weighted squared error (drive/training/loss.py).

    Attributes:
        alpha: weight exponent: a frame with label y gets weight exp(alpha·|y| / curvature_scale_1pm)
            before normalisation, so alpha is free of the curvature unit (0 = plain mean squared error).
    """

    alpha: float = 1.0

    def __post_init__(self) -> None:
        _check(self.alpha >= 0, f"loss.alpha must be >= 0, got {self.alpha}")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run.

    Attributes:
        data, policy, optim, loss, augment: the sections above (`policy` is the registry's PolicyConfig).
        epochs: passes over the training windows.
        max_steps: if > 0, stop after this many optimiser steps (and end the schedule there) even when
            epochs would run longer.
        batch: windows per optimiser step over all ranks (the global batch; each of N DDP ranks takes
            batch / N), so N processes train exactly like one.
        device: `auto` (CUDA when present), `cpu` or `cuda`.
        amp_bf16: bfloat16 autocast for the perception in training steps (the recurrent head, the loss
            and validation stay float32): false (the default) keeps float32, `auto` turns it on where
            the hardware computes bfloat16 natively (a CUDA GPU with bf16, or a CPU with AVX512-BF16 /
            AMX-BF16 under oneDNN; drive/training/precision.py), true forces it on. ~1.75x faster on
            such a CPU; launch/train_default.yaml (ncp-ltc) says `auto`, see precision.py for the
            validation over seeds behind that and why the code default stays false.
        seed: seed of the initialisation, the window order and the augmentation.
        init_checkpoint: optional checkpoint whose weights start the run (fine-tuning); its policy must
            have the same shape.
        calibrate_input_map: at a fresh start (no init_checkpoint), set the LTC head's input map so each
            of the 32 features enters with mean 0.5 and std 0.5 over the first training windows
            (`LTC.calibrate_input_map`). Off by default (the paper has no such step); measured on the
            demo's drives it took seed 2 off the plateau (val/zero 0.92 -> 0.12 by epoch 3).
        log_interval: optimiser steps between metric lines (metrics.jsonl, the bar, TensorBoard).
        eval_interval: steps between validations; 0 validates at the end of every epoch.
        checkpoint_interval: steps between saves of `last.pt` (it is also saved at every validation).
        threads: torch CPU threads per process; 0 leaves torch's default (cores / local processes).
        progress: show a progress bar (rank 0 only).
    """

    data: DataConfig = field(default_factory=DataConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    epochs: int = 3
    max_steps: int = 0
    batch: int = 16
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp_bf16: bool | Literal["auto"] = False
    seed: int = 0
    init_checkpoint: str = ""
    calibrate_input_map: bool = False
    log_interval: int = 10
    eval_interval: int = 0
    checkpoint_interval: int = 100
    threads: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _check(self.max_steps >= 0, f"max_steps must be >= 0, got {self.max_steps}")
        _check(self.batch >= 1, f"batch must be >= 1, got {self.batch}")
        for name in ("log_interval", "checkpoint_interval"):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        _check(self.eval_interval >= 0, f"eval_interval must be >= 0, got {self.eval_interval}")
        _check(self.threads >= 0, f"threads must be >= 0, got {self.threads}")
        _check(self.seed >= 0, f"seed must be >= 0, got {self.seed}")


RESUME_FREE_KEYS = frozenset(
    {
        "data.root",
        "data.workers",
        "data.cache_mb",
        "device",
        "log_interval",
        "checkpoint_interval",
        "threads",
        "progress",
    }
)
"""Dotted keys a `--resume` may change: where and how fast the run goes, never what it computes."""


def config_differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved configs (`common.strict_config.to_dict` form)."""
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        dotted = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(config_differences(a, b, f"{dotted}."))
        elif a != b:
            out.append(dotted)
    return out
