"""Old data never silently reused or removed: an output directory says which config made it, refuses
another, `--overwrite` deletes only what a recorder wrote, and one run at a time writes into it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.output_dir import LOCK_FILE, MANIFEST_FILE
from drive.cli import main
from recordings.reader import Recording

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--episodes", "2", "--track", "oval", "--quiet"]


def _record(out: Path, minutes: str = "0.1", *extra: str) -> int:
    return main(["record", "--out", str(out), "--minutes", minutes, *ARGS, *extra])


def _frames(out: Path) -> dict[str, int]:
    return {p.name: Recording(p).num_frames for p in sorted(out.glob("episode-*"))}


def test_recording_into_a_directory_of_another_config_is_refused_and_changes_nothing(tmp_path, capsys):
    out = tmp_path / "rec"
    assert _record(out) == 0
    saved = (out / "record.yaml").read_text()
    assert json.loads((out / MANIFEST_FILE).read_text())["made_by"] == "drive record"
    capsys.readouterr()
    assert _record(out, "0.2") == 2
    err = capsys.readouterr().err
    assert "another configuration" in err and "minutes" in err and "--overwrite" in err
    assert "new directory" in err and "Traceback" not in err
    assert (out / "record.yaml").read_text() == saved  # the config file still says what made the data
    assert _frames(out) == {"episode-0000": 60, "episode-0001": 60}


def test_a_directory_of_episodes_without_a_manifest_is_not_reused(tmp_path, capsys):
    out = tmp_path / "rec"
    assert _record(out) == 0
    (out / MANIFEST_FILE).unlink()
    capsys.readouterr()
    assert _record(out) == 2
    assert "unknown configuration" in capsys.readouterr().err


def test_overwrite_removes_only_what_the_recorder_wrote(tmp_path, capsys):
    out = tmp_path / "rec"
    assert _record(out) == 0
    (out / "README.txt").write_text("my notes")
    assert _record(out, "0.2", "--overwrite") == 0
    assert _frames(out) == {"episode-0000": 120, "episode-0001": 120}
    assert (out / "README.txt").read_text() == "my notes"
    # A user's file inside an episode: nothing is deleted, the file is named.
    (out / "episode-0001" / "labels.csv").write_text("mine")
    capsys.readouterr()
    assert _record(out, "0.1", "--overwrite") == 2
    assert "labels.csv" in capsys.readouterr().err
    assert (out / "episode-0001" / "labels.csv").read_text() == "mine"
    assert _frames(out) == {"episode-0000": 120, "episode-0001": 120}


def test_a_second_concurrent_run_into_the_same_output_is_refused_at_once(tmp_path, capsys):
    out = tmp_path / "rec"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
            str(out / LOCK_FILE),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        assert _record(out) == 2
        assert time.monotonic() - started < 10  # refused at once, no waiting
        err = capsys.readouterr().err
        assert "being written by another drive record run" in err and str(out) in err
        assert not list(out.glob("episode-*"))
    finally:
        holder.kill()
        holder.wait()
    assert _record(out) == 0  # the lock went with the process that held it


def _launch_file(tmp_path: Path, minutes: float) -> Path:
    path = tmp_path / "run.yaml"
    data = {
        "name": "tiny",
        "out": "out",
        "stages": ["record"],
        "record": {"tracks": ["oval"], "episodes": 2, "minutes": minutes},
    }
    path.write_text(yaml.safe_dump(data))
    return path


def test_launch_refuses_a_done_stage_of_another_config_and_force_keeps_user_files(tmp_path, capsys):
    path = _launch_file(tmp_path, 0.1)
    out = tmp_path / "out"
    assert main(["launch", str(path), "--quiet"]) == 0
    launch_yaml = (out / "launch.yaml").read_text()
    state = json.loads((out / "launch_state.json").read_text())
    assert state["record"]["config_digest"]
    path = _launch_file(tmp_path, 0.2)  # record.minutes changed, record is done
    capsys.readouterr()
    assert main(["launch", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "stage record was done with another configuration" in err and "--force" in err
    assert (out / "launch.yaml").read_text() == launch_yaml  # never reports a config it did not run
    assert _frames(out / "record") == {"episode-0000": 60, "episode-0001": 60}
    note = out / "record" / "episode-0000" / "mine.txt"
    note.write_text("keep me")
    assert main(["launch", str(path), "--quiet", "--force"]) == 2
    assert "mine.txt" in capsys.readouterr().err and note.read_text() == "keep me"
    note.unlink()
    assert main(["launch", str(path), "--quiet", "--force"]) == 0
    assert _frames(out / "record") == {"episode-0000": 120, "episode-0001": 120}
    assert main(["launch", str(path), "--quiet"]) == 0  # now done with this config: skipped
    assert json.loads((out / "launch_state.json").read_text())["record"]["skipped"]


def test_two_launches_into_one_output_do_not_interleave(tmp_path, capsys):
    path = _launch_file(tmp_path, 0.1)
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX)  # another descriptor: flock conflicts even within one process
    try:
        assert main(["launch", str(path), "--quiet"]) == 2
        assert "being written by another drive launch run" in capsys.readouterr().err
    finally:
        os.close(fd)
    assert not (out / "record").exists()


@pytest.mark.parametrize("stage_file", ["record"])
def test_record_stage_state_names_its_digest(tmp_path, stage_file):
    from drive.launch.runner import load_launch
    from drive.launch.stage_config import stage_digest

    a = load_launch(_launch_file(tmp_path, 0.1))
    b = load_launch(_launch_file(tmp_path, 0.2))
    assert stage_digest(a, stage_file) != stage_digest(b, stage_file)
    assert stage_digest(a, "train") != stage_digest(b, "train")  # training reads the recordings


@pytest.mark.parametrize("interrupted_policy, state", [("ncp-ltc", "started"), ("cnn", "done")])
def test_a_stage_interrupted_part_way_resumes_with_its_config_and_refuses_another(
    tmp_path, capsys, monkeypatch, interrupted_policy, state
):
    """Ctrl-C while a policy trains (the first of two, or the second after the first is done): the rerun
    of the same launch file goes on where it stopped; a changed training config is refused, never mixed
    with the interrupted run's outputs."""
    import drive.training.run

    trained: list[str] = []

    def train_once(config: Any, run_dir: Path, resume: bool) -> dict[str, Any]:
        run_dir.mkdir(parents=True, exist_ok=True)
        if run_dir.name == interrupted_policy and interrupted_policy not in trained:
            trained.append(interrupted_policy)
            raise KeyboardInterrupt
        trained.append(run_dir.name)
        return {"policy": run_dir.name}

    def launch_file(epochs: int) -> Path:
        data = yaml.safe_load(_launch_file(tmp_path, 0.1).read_text())
        data["stages"] = ["record", "train"]
        data["train"] = {"policies": ["ncp-ltc", "cnn"], "overrides": [f"epochs={epochs}"]}
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    monkeypatch.setattr(drive.training.run, "run_training", train_once)
    assert main(["launch", str(launch_file(1)), "--quiet"]) == 130  # the CLI's exit on Ctrl-C
    before = list(trained)
    capsys.readouterr()
    assert main(["launch", str(launch_file(2)), "--quiet"]) == 2  # another training config
    assert f"stage train was {state} with another configuration" in capsys.readouterr().err
    assert trained == before
    assert main(["launch", str(launch_file(1)), "--quiet"]) == 0  # the same: goes on where it stopped
    assert trained == [*before, *(["cnn"] if state == "done" else ["ncp-ltc", "cnn"])]
