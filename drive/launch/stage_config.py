"""Which configuration a launch stage's outputs were made with, so a launch never reuses or reports
outputs of a config it is not running.

Each stage's entry in `launch_state.json` keeps the digest of everything its outputs depend on: its own
section of the launch file and those of the stages it reads (training reads the recordings, the
evaluation reads the trained checkpoints, ...), and for training the text of the training config file.
A later launch whose config gives another digest for a done stage is refused before any stage runs,
unless `--force`, which redoes the stages.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drive.launch.runner import Launch, LaunchConfig


def stage_digest(config: LaunchConfig, stage: str) -> str:
    """Digest of everything `stage`'s outputs depend on (see the module docstring)."""
    from common.strict_config import digest

    train_file = Path(config.train.config)
    inputs: dict[str, Any] = {"record": config.record}
    if stage != "record":
        text = train_file.read_text() if train_file.is_file() else None
        inputs["train"] = {"section": config.train, "file": text}
    if stage in ("eval", "onboard"):
        inputs["eval"] = config.eval
    if stage in ("export", "onboard"):
        inputs["export"] = config.export
    if stage == "onboard":
        inputs["onboard"] = config.onboard
    return digest(inputs)


def done_markers(launch: Launch, stage: str) -> list[Path]:
    """Files whose presence says `stage` ran (any one of them, for training's per-policy markers)."""
    return {
        "record": [launch.recordings / "DONE"],
        "train": [launch.run_dir(p) / "DONE" for p in launch.config.train.policies],
        "eval": [launch.out / "eval" / "metrics.json"],
        "export": [launch.model],
        "onboard": [launch.out / "onboard" / "metrics.json"],
    }.get(stage, [])


def check_done_stages(launch: Launch, stages: list[str]) -> None:
    """Refuse to reuse a stage's outputs made with another config (with `force` they are redone).

    Raises:
        ValueError: naming the output directory and the first such stage, and how to proceed.
    """
    if launch.force:
        return
    for stage in stages:
        done = any(p.exists() for p in done_markers(launch, stage))
        # A stage records its digest when it starts, so an interrupted stage's partial outputs (the
        # first policies trained, a checkpoint to resume from) are tied to their config as well.
        ran = launch.state.get(stage, {}).get("config_digest")
        if (done or ran) and ran != stage_digest(launch.config, stage):
            why = "another configuration" if ran else "a configuration it did not record"
            raise ValueError(
                f"{launch.out}: stage {stage} was {'done' if done else 'started'} with {why}; pass "
                "--force to redo the stages (episodes and files this launch did not write are kept), "
                "or choose another out"
            )


def validate_stage_configs(launch: Launch, stages: list[str]) -> None:
    """Load every stage's config now, so a typo in `eval.*` fails before record and train run.

    Raises:
        ConfigError: naming the stage and the key.
    """
    from common.strict_config import ConfigError
    from drive.training.run import resolve_config

    if "train" in stages:
        train = launch.config.train
        for policy in train.policies:
            overrides = [f"policy.name={policy}", *train.overrides, *train.per_policy.get(policy, [])]
            try:
                resolve_config(train.config, launch.recordings, overrides)
            except (ConfigError, OSError) as err:
                raise ConfigError(f"train ({policy}): {err}") from None
    if "eval" in stages or "onboard" in stages:
        launch._eval_config()
