"""Ordinary faults give one clean error line (exit 2) naming what was wrong, never a traceback; numeric
options are refused up front; a launch checks every stage's config before any stage runs."""

from __future__ import annotations

import errno
import json
import math

import pytest
import yaml

from drive.cli import main

RECORD = ["record", "--episodes", "1", "--minutes", "0.05", "--track", "oval", "--quiet"]


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def test_out_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "taken").write_text("mine")
    assert main([*RECORD, "--out", str(tmp_path / "taken")]) == 2
    _one_line_error(capsys, "drive record: error:", "taken")
    assert (tmp_path / "taken").read_text() == "mine"


def test_config_that_is_a_directory_is_one_line(tmp_path, capsys):
    assert main([*RECORD, "--out", str(tmp_path / "o"), "--config", str(tmp_path)]) == 2
    _one_line_error(capsys, "drive record: error:", str(tmp_path))


def test_a_full_disk_mid_recording_is_one_line_and_leaves_the_episode_aborted(tmp_path, capsys, monkeypatch):
    import recordings.writer as writer_module
    from recordings.reader import Recording

    real = writer_module.write_part
    calls = {"n": 0}

    def full_disk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(writer_module, "write_part", full_disk)
    out = tmp_path / "rec"
    assert main([*RECORD, "--minutes", "0.2", "--out", str(out)]) == 2
    _one_line_error(capsys, "No space left on device")
    episode = Recording(out / "episode-0000")
    assert not episode.complete and episode.num_frames == 0  # consistent: nothing claimed
    monkeypatch.undo()
    assert main([*RECORD, "--minutes", "0.2", "--out", str(out)]) == 0
    assert Recording(out / "episode-0000").complete


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["record", "--out", "X", "--minutes", "inf"], ["--minutes", "inf"]),
        (["record", "--out", "X", "--episodes", "0"], ["--episodes"]),
        (["record", "--out", "X", "--seed", "-3"], ["--seed", "-3"]),
        (["record", "--out", "X", "--set", "minutes=nan"], ["minutes", "finite"]),
        (["record", "--out", "X", "--set", "seed=-1"], ["seed must be ≥ 0"]),
        (["onboard", "--model", "m.onnx", "--laps", "0"], ["--laps"]),
        (["onboard", "--model", "m.onnx", "--max-minutes", "inf"], ["--max-minutes"]),
        (["onboard", "--model", "m.onnx", "--seed", "-1"], ["--seed"]),
        (["export", "c.pt", "--out", "m.onnx", "--tolerance", "nan"], ["--tolerance", "nan"]),
        (["eval", "--policy", "expert", "--out", "X", "--seeds=-1,2"], ["seeds", "≥ 0"]),
        (["eval", "--policy", "expert", "--out", "X", "--laps", "0"], ["laps"]),
        (["train", "--data", "X", "--out", "Y", "--set", "optim.lr_head=inf"], ["optim.lr_head", "finite"]),
        (
            ["train", "--data", "X", "--out", "Y", "--set", "policy.curvature_scale_1pm=0"],
            ["curvature_scale_1pm"],
        ),
    ],
)
def test_numeric_options_are_refused_up_front_naming_the_key(tmp_path, monkeypatch, capsys, argv, needles):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(argv))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not (tmp_path / "X").exists() and not (tmp_path / "Y").exists()  # refused before any work


def test_a_launch_checks_every_stage_before_running_any(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    data = {
        "name": "typo",
        "out": "out",
        "stages": ["record", "train", "eval"],
        "record": {"tracks": ["oval"], "episodes": 1, "minutes": 0.05},
        "train": {"overrides": ["epochs=1"]},
        "eval": {"track": "forest", "seeds": [0], "max_steps": 5, "trak": "forest"},
    }
    path.write_text(yaml.safe_dump(data))
    assert main(["launch", str(path), "--quiet"]) == 2
    _one_line_error(capsys, "eval.trak")
    assert not (tmp_path / "out" / "record").exists()
    data["eval"].pop("trak")
    data["train"]["overrides"] = ["optim.lr_head=inf"]
    path.write_text(yaml.safe_dump(data))
    assert main(["launch", str(path), "--quiet"]) == 2
    _one_line_error(capsys, "train (ncp-ltc)", "optim.lr_head")
    assert not (tmp_path / "out" / "record").exists()


def test_metrics_jsonl_holds_null_never_bare_nan(tmp_path):
    import numpy as np

    from drive.training.train_metrics import MetricsLog, read_metrics

    log = MetricsLog(tmp_path)
    log.write("val", 3, loss=math.nan, ratio=np.float32("inf"), ok=0.5, nested={"x": float("nan")})
    log.close()
    text = (tmp_path / "metrics.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    record = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in metrics.jsonl"))
    assert record == {"kind": "val", "step": 3, "loss": None, "ratio": None, "ok": 0.5, "nested": {"x": None}}
    assert read_metrics(tmp_path / "metrics.jsonl") == [record]
