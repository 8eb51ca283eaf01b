"""`drive launch`: a tiny whole pipeline runs, reuses what exists, and finishes an interrupted run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from common.strict_config import ConfigError, load_config
from drive.cli import main
from drive.launch.runner import LaunchConfig, load_launch

TINY = {
    "name": "tiny",
    "record": {"tracks": ["oval"], "conditions": ["summer", "night"], "episodes": 2, "minutes": 0.2},
    "train": {
        "config": "train_default.yaml",  # beside the launch file (the fixture copies it there)
        "policies": ["ncp-ltc", "cnn"],
        "overrides": ["epochs=1", "batch=2", "data.window=4", "data.stride=4", "log_interval=1"],
    },
    "eval": {
        "track": "forest",
        "noise": [0.0, 0.1],
        "seeds": [0],
        "laps": None,
        "max_steps": 20,
        "workers": 1,
    },
    "export": {"policy": "ncp-ltc", "parity_steps": 5},
    "onboard": {"laps": 1, "max_time_s": 1.0, "precisions": ["fp32", "int8"]},
}


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    # Run from another directory: the file's relative paths (`out`, `train.config`) are relative to
    # the file's folder, not to the working directory.
    root = tmp_path_factory.mktemp("launch")
    (root / "files").mkdir()
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(REPO / "launch" / "train_default.yaml", root / "files" / "train_default.yaml")
    path = root / "files" / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "out": "../out"}))
    cwd = os.getcwd()
    os.chdir(elsewhere)
    try:
        assert main(["launch", str(path), "--quiet"]) == 0
    finally:
        os.chdir(cwd)
    assert list(elsewhere.iterdir()) == []  # nothing landed in the working directory
    saved = load_config(LaunchConfig, root / "out" / "launch.yaml")
    assert saved.out == str(root / "out") and saved.train.config == str(root / "files" / "train_default.yaml")
    return path, root / "out"


def test_every_stage_ran_and_the_report_says_so(launched):
    _, out = launched
    state = json.loads((out / "launch_state.json").read_text())
    assert list(state) == ["record", "train", "eval", "export", "onboard", "report"]
    assert not any(stage.get("skipped") for stage in state.values())
    for path in (
        "record/DONE",
        "train/ncp-ltc/checkpoints/best.pt",
        "train/cnn/DONE",
        "eval/metrics.json",
        "export/model.onnx",
        "onboard/metrics.json",
        "report.md",
    ):
        assert (out / path).exists(), path
    report = (out / "report.md").read_text()
    for heading in (
        "## Stages",
        "## Recorded expert drives",
        "## Training",
        "## ONNX export",
        "## Onboard runtime",
        "## Closed-loop evaluation",
    ):
        assert heading in report
    onboard = json.loads((out / "onboard" / "metrics.json").read_text())
    assert list(onboard) == ["fp32", "int8"]
    assert onboard["int8"]["model"].endswith("model.int8.onnx")
    assert "- int8 (`model.int8.onnx`)" in report and "(int8): max |Δ curvature|" in report


def test_second_run_reuses_everything(launched, capsys):
    path, out = launched
    before = (out / "export" / "model.onnx").stat().st_mtime_ns
    assert main(["launch", str(path), "--quiet"]) == 0
    state = json.loads((out / "launch_state.json").read_text())
    assert all(state[s].get("skipped") for s in ("record", "train", "eval", "export", "onboard"))
    assert (out / "export" / "model.onnx").stat().st_mtime_ns == before


def test_interrupted_run_finishes_the_work(launched):
    path, out = launched
    # As if killed during cnn training and before the evaluation: its marker and the eval are missing.
    (out / "train" / "cnn" / "DONE").unlink()
    (out / "eval" / "metrics.json").unlink()
    assert main(["launch", str(path), "--quiet"]) == 0
    state = json.loads((out / "launch_state.json").read_text())
    assert state["train"]["policies"]["ncp-ltc"].get("skipped")
    assert not state["train"]["policies"]["cnn"].get("skipped")
    assert not state["eval"].get("skipped") and (out / "eval" / "metrics.json").is_file()
    assert state["export"].get("skipped")


def test_report_reads_an_onboard_result_written_before_precisions(launched):
    from drive.launch.run_report import write_launch_report
    from drive.launch.runner import Launch

    path, out = launched
    onboard = out / "onboard" / "metrics.json"
    current = onboard.read_text()
    try:
        old_layout = {k: v for k, v in json.loads(current)["fp32"].items() if k != "model"}
        onboard.write_text(json.dumps(old_layout))
        report = write_launch_report(Launch(load_launch(path))).read_text()
        assert "- fp32 (`model.onnx`):" in report and "int8 (`model.int8.onnx`)" not in report
    finally:
        onboard.write_text(current)


def test_bad_launch_files_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="train.polices"):
        load_config(LaunchConfig, {"train": {"polices": ["lstm"]}})
    with pytest.raises(ConfigError, match="export.policy"):
        load_config(LaunchConfig, {"export": {"policy": "gru"}})
    with pytest.raises(ConfigError, match="stages"):
        load_config(LaunchConfig, {"stages": ["record", "deploy"]})
    with pytest.raises(ConfigError, match=r"onboard.precisions.*fp64"):
        load_config(LaunchConfig, {"onboard": {"precisions": ["fp64"]}})
    with pytest.raises(ConfigError, match="export.int8 is false"):
        load_config(LaunchConfig, {"export": {"int8": False}, "onboard": {"precisions": ["int8"]}})


def test_launch_paths_are_relative_to_the_file_and_out_to_the_working_directory(tmp_path, monkeypatch):
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    path = folder / "run.yaml"
    data = {"out": "../runs/x", "train": {"config": "t.yaml"}, "record": {"tracks": ["oval"]}}
    path.write_text(yaml.safe_dump({**data, "eval": {"track": "maps/town.xodr"}}))
    monkeypatch.chdir(tmp_path)
    config = load_launch(path)
    assert Path(config.out) == tmp_path / "a" / "runs" / "x"
    assert Path(config.train.config) == folder / "t.yaml"
    assert Path(config.eval["track"]) == folder / "maps" / "town.xodr"
    assert config.record.tracks == ["oval"]  # a track name is not a path
    assert load_launch(path, out="here").out == "here"  # --out: the working directory's
    assert load_launch(path, ["out=/abs/o"]).out == "/abs/o"
    # `make demo` (from the repository root) still writes to out/demo.
    monkeypatch.chdir(REPO)
    demo = load_launch("launch/demo.yaml")
    assert (demo.out, demo.train.config) == ("out/demo", "launch/train_default.yaml")


def test_demo_launch_file_loads():
    config = load_launch(REPO / "launch" / "demo.yaml")
    assert (
        config.train.policies == ["ncp-ltc", "ncp-cfc", "lstm", "cnn"]
        and config.eval["track"] not in config.record.tracks
    )
