"""Training: resume, every registry policy, divergence, wrong checkpoints, the `drive train` CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from common.strict_config import load_config
from drive.cli import main
from drive.training.data import AugmentedWindows
from drive.training.distributed import DistContext
from drive.training.train_config import TrainConfig
from drive.training.train_metrics import read_metrics
from drive.training.trainer import NonFiniteLossError, Trainer
from policies.checkpoint import read_checkpoint, save_checkpoint
from policies.driving_policy import PolicyConfig
from policies.registry import build_policy, policy_names
from tests.drive.bar_drives import BarWindows, write_bar_drives

ROOT = Path(__file__).resolve().parents[2]
CPU = DistContext(device=torch.device("cpu"))
TINY = {
    "batch": 4,
    "data": {"window": 4},
    "epochs": 3,
    "progress": False,
    "log_interval": 1,
    "threads": 1,
    "device": "cpu",
    "optim": {"warmup_steps": 2},
}


def _config(*overrides: str, base: dict | None = None) -> TrainConfig:
    return load_config(TrainConfig, base or TINY, list(overrides))


def _trainer(config: TrainConfig, out: Path | None = None, windows: int = 12, val: int = 4) -> Trainer:
    window = config.data.window
    train = AugmentedWindows(BarWindows(windows, window, seed=0), config.augment, config.seed)
    val_set = AugmentedWindows(BarWindows(val, window, seed=1)) if val else None
    return Trainer(config, train, val_set, out, ctx=CPU)


def test_resume_equals_uninterrupted(tmp_path):
    config = _config("augment.shadow_probability=1.0", "augment.shift_max_px=6", "optim.weight_decay=1e-4")
    whole = _trainer(config, tmp_path / "whole")
    whole.fit()
    assert whole.step_count == 9  # 12 windows / batch 4 = 3 steps per epoch, 3 epochs

    first = _trainer(config, tmp_path / "parts")
    first.fit(stop_at_step=4)  # "interrupted" in the middle of the second epoch
    assert read_checkpoint(tmp_path / "parts" / "checkpoints" / "last.pt")["step"] == 4
    second = _trainer(config, tmp_path / "parts")
    second.restore(tmp_path / "parts" / "checkpoints" / "last.pt")
    second.fit()

    a, b = whole.policy.state_dict(), second.policy.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-6, rtol=0, msg=key)
    assert second.best_val_loss == pytest.approx(whole.best_val_loss, abs=1e-9)
    steps = [r["step"] for r in read_metrics(tmp_path / "parts" / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == list(range(1, 10))  # one consistent story, no duplicated steps


@pytest.mark.parametrize("name", policy_names())
def test_every_registry_policy_trains_through_the_same_path(name):
    config = _config(f"policy.name={name}", "batch=2", "data.window=3", "optim.warmup_steps=0")
    trainer = _trainer(config, windows=2, val=1)
    groups = {g["name"]: [p.detach().clone() for p in g["params"]] for g in trainer.optimizer.param_groups}
    assert groups["perception"], "the convolutions form the low-LR group"
    frames, labels = next(iter(trainer.loader))
    stats = trainer.step(frames, labels)
    assert math.isfinite(stats["loss"]) and stats["grad_norm"] > 0
    assert stats["lr_perception"] < stats["lr_head"]
    for group in trainer.optimizer.param_groups:
        before = groups[group["name"]]
        moved = [not torch.equal(p0, p) for p0, p in zip(before, group["params"])]
        assert not before or any(moved), f"{name}: no {group['name']} parameter was updated"
    val = trainer.evaluate()
    assert math.isfinite(val["val_loss"]) and val["val_zero_loss"] > 0


def test_non_finite_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    config = _config(
        "optim.lr_head=1e25", "optim.lr_perception=1e25", "optim.warmup_steps=0", "checkpoint_interval=1"
    )
    trainer = _trainer(config, tmp_path / "run")
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite training loss .* at step \d+.*last\.pt"
    ) as info:
        trainer.fit()
    failed_step = trainer.step_count + 1
    assert f"at step {failed_step}" in str(info.value)
    payload = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert payload["step"] == trainer.step_count >= 1  # the last step that was applied, nothing after
    assert all(torch.isfinite(v).all() for v in payload["state_dict"].values() if v.is_floating_point())
    events = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "event"]
    assert events[-1]["event"] == "non_finite" and events[-1]["step"] == trainer.step_count


def test_checkpoint_of_another_policy_shape_is_a_clear_error(tmp_path):
    small = build_policy(PolicyConfig(name="lstm", units=32))
    save_checkpoint(tmp_path / "small.pt", small)
    config = _config("policy.name=lstm", f"init_checkpoint={tmp_path / 'small.pt'}")
    with pytest.raises(ValueError, match=r"small\.pt does not fit this 'lstm' policy: .* has shape"):
        _trainer(config)
    # resuming a run with another policy shape names the differing key before touching the weights
    run = _trainer(_config("policy.name=lstm", "max_steps=1"), tmp_path / "run")
    run.fit()
    other = _trainer(_config("policy.name=lstm", "policy.units=32", "max_steps=1"))
    with pytest.raises(ValueError, match=r"cannot resume .*policy\.units: 64 saved, 32 now"):
        other.restore(tmp_path / "run" / "checkpoints" / "last.pt")


def test_drive_train_cli(tmp_path, capsys):
    data = write_bar_drives(tmp_path / "data", episodes=2, frames=24)
    out = tmp_path / "run"
    args = [
        "train",
        "--config",
        str(ROOT / "launch" / "train_default.yaml"),
        "--data",
        str(data),
        "--out",
        str(out),
    ]
    small = ["--set", "max_steps=2", "--set", "batch=2", "--set", "data.window=4", "--set", "progress=false"]
    small += ["--set", "threads=1", "--set", "device=cpu"]
    assert main(args + small) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and Path(summary["last_checkpoint"]).is_file()
    assert (out / "config.yaml").is_file() and (out / "loss_curves.png").is_file()

    assert main(args + small) == 2
    assert "already holds a training run" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume"]) == 0  # the saved config; already finished
    assert json.loads(capsys.readouterr().out)["steps"] == 2
    assert main(args + small + ["--resume", "--set", "optim.lr_head=0.1"]) == 2
    assert "optim.lr_head: 0.01 saved, 0.1 now" in capsys.readouterr().err
    assert main(args + ["--set", "optim.lr_heads=1"]) == 2
    assert "optim.lr_heads" in capsys.readouterr().err
    assert (
        main(
            ["train", "--data", str(data), "--out", str(tmp_path / "new"), "--set", "policy.camera_width=160"]
        )
        == 2
    )
    assert "policy.camera_width=200" in capsys.readouterr().err
