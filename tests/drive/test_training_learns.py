"""Acceptance: a tiny policy trained on tiny synthetic recordings beats the zero predictor by far."""

from __future__ import annotations

from drive.training.run import resolve_config, run_training
from drive.training.train_metrics import read_metrics
from policies.checkpoint import load_policy
from tests.drive.bar_drives import write_bar_drives


def test_tiny_policy_learns_bar_recordings_well_below_the_zero_predictor(tmp_path):
    data = write_bar_drives(tmp_path / "data", episodes=4, frames=96)
    config = resolve_config(
        None,
        data,
        [
            "batch=8",
            "data.window=8",
            "data.stride=4",
            "data.val_fraction=0.25",
            "max_steps=32",
            "epochs=10",
            "eval_interval=32",
            "optim.lr_head=0.01",
            "optim.lr_perception=0.002",
            "optim.schedule=constant",
            "optim.warmup_steps=3",
            "augment.enabled=false",
            "progress=false",
            "threads=1",
            "device=cpu",
        ],
    )
    summary = run_training(config, tmp_path / "run")
    assert summary["val_ratio"] < 0.4, summary  # the zero predictor's ratio is 1
    assert summary["val_loss"] < 0.4 * summary["val_zero_loss"]
    out = tmp_path / "run"
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "loss_curves.png",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (out / name).is_file(), name
    records = read_metrics(out / "metrics.jsonl")
    assert {r["kind"] for r in records} == {"event", "train", "val"}
    assert records[-1]["event"] == "end"
    policy, payload = load_policy(out / "checkpoints" / "best.pt")
    assert policy.config.name == "ncp-ltc" and payload["train_config"]["optim"]["lr_head"] == 0.01
    assert payload["preprocess"] == policy.config.contract.to_dict() and payload["wiring"] is not None
    split = payload["extra"]["data"]
    train, val = set(split["train_episodes"]), set(split["val_episodes"])
    assert len(val) == 1 and len(train) == 3 and not train & val  # split by episode
