"""A whole `drive train` run: resolve the config, load the recordings, train, resume, clean up.

Output directory layout (written by rank 0):

    <out>/config.yaml            the resolved config
    <out>/metrics.jsonl          train / val / event records (metrics.py)
    <out>/loss_curves.png        the loss curves, drawn at the end
    <out>/checkpoints/last.pt    the latest state, resumable (each checkpoint_interval and validation)
    <out>/checkpoints/best.pt    the state with the lowest validation loss so far
    <out>/tensorboard/           when the tensorboard package is installed
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.strict_config import ConfigError, load_config
from drive.training.train_config import TrainConfig
from drive.training.trainer import CHECKPOINT_DIR, LAST


def resolve_config(
    config_path: str | Path | None,
    data_root: str | Path | None = None,
    overrides: Sequence[str] = (),
    resume_out: str | Path | None = None,
) -> TrainConfig:
    """The run's config: the YAML file (or, when resuming without one, the checkpoint's saved config, or
    the built-in defaults), then the `--set` overrides, then `--data`.

    Raises:
        ConfigError: an unknown key, a wrong type or a bad value (the message names the key).
        FileNotFoundError: resuming without a config and without `<out>/checkpoints/last.pt`.
    """
    source: Any = config_path
    if config_path is None and resume_out is not None:
        from policies.checkpoint import read_checkpoint

        path = Path(resume_out) / CHECKPOINT_DIR / LAST
        if not path.is_file():
            raise FileNotFoundError(f"nothing to resume: {path} does not exist")
        source = read_checkpoint(path).get("train_config")
        if source is None:
            raise ConfigError(f"{path} holds no training config; give --config")
    config = load_config(TrainConfig, source, list(overrides))
    if data_root is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, root=str(data_root)))
    return config


def run_training(config: TrainConfig, out_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    """Train `config` into `out_dir` (under torchrun: as one of its ranks). Returns fit()'s summary.

    Raises:
        ValueError: bad data (no episodes, frames of another size than the policy takes, ...), a run
            already in `out_dir` when not resuming, or a checkpoint that does not fit.
        FileNotFoundError: `--resume` without `<out>/checkpoints/last.pt`.
        NonFiniteLossError: the loss diverged (the last good checkpoint is kept).
    """
    from drive.training.data import load_recordings
    from drive.training.distributed import init_distributed, shutdown_distributed
    from drive.training.trainer import Trainer

    out_dir = Path(out_dir)
    last = out_dir / CHECKPOINT_DIR / LAST
    if resume and not last.is_file():
        raise FileNotFoundError(f"nothing to resume: {last} does not exist")
    if not resume and last.exists():
        raise ValueError(
            f"{out_dir} already holds a training run ({last}); add --resume or choose another --out"
        )
    ctx = init_distributed(config.device)
    try:
        data = load_recordings(config.data, config.augment, config.seed)
        expected = (config.policy.camera_height, config.policy.camera_width)
        if tuple(data.image_shape[:2]) != expected:
            height, width = data.image_shape[:2]
            raise ValueError(
                f"the recordings' frames are {height}x{width} but the policy takes "
                f"{expected[0]}x{expected[1]} camera images; add --set policy.camera_height={height} "
                f"--set policy.camera_width={width} "
                "(and the crop fractions if the camera sees sky or bonnet)"
            )
        trainer = Trainer(config, data.train, data.val, out_dir, ctx=ctx, data_info=data.describe())
        if resume:
            trainer.restore(last)
        summary = trainer.fit()
    except BaseException:
        shutdown_distributed(clean=False)
        raise
    shutdown_distributed()
    return summary
