"""Episodes imported from all three formats train together: one `drive train` step on a batch holding a
window of each (same validator, same dataset, same training as recorded drives)."""

from __future__ import annotations

import json

import numpy as np

from drive.cli import main
from tests.importers.makers import write_bag, write_csv, write_tub, write_video


def _ok(args: list[str], capsys) -> None:
    code = main(args)
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()


def test_one_training_step_on_a_bag_a_tub_and_a_video(tmp_path, capsys):
    src, data = tmp_path / "src", tmp_path / "data"
    bag = write_bag(src / "b.mcap", 10.0 + 0.05 * np.arange(8), 10.0 + 0.02 * np.arange(20), lambda t: 0.1)
    tub = write_tub(src / "tub", [1_000 + 50 * i for i in range(8)], np.full(8, -0.5))
    video = write_video(src / "v.mp4", 8, 20)
    write_csv(video.with_suffix(".csv"), ["timestamp_s", "steering"], [[0.05 * i, 0.02] for i in range(8)])
    common = ["--no-progress", "--set", "align.min_episode_frames=4", "--set", "vehicle.wheelbase_m=0.3"]
    _ok(["recordings", "import", "rosbag2", str(bag), "--out", str(data / "bag"), *common], capsys)
    _ok(
        [
            "recordings",
            "import",
            "donkeycar",
            str(tub),
            "--out",
            str(data / "tub"),
            *common,
            "--set",
            "vehicle.max_steer_rad=0.5",
        ],
        capsys,
    )
    _ok(
        [
            "recordings",
            "import",
            "video",
            str(video),
            "--out",
            str(data / "video"),
            *common,
            "--set",
            "label.kind=curvature",
        ],
        capsys,
    )
    _ok(["recordings", "validate", str(data)], capsys)

    args = ["train", "--data", str(data), "--out", str(tmp_path / "run")]
    for setting in (
        "max_steps=1",
        "batch=3",
        "data.window=4",
        "data.stride=100",
        "data.val_fraction=0",
        "progress=false",
        "threads=1",
        "device=cpu",
    ):
        args += ["--set", setting]
    assert main(args) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 1
    events = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    start, end = events[0], events[-1]
    assert start["event"] == "start" and start["train_windows"] == 3  # one window of each format
    assert end["event"] == "end" and np.isfinite(end["train_loss"]) and end["train_loss"] > 0
