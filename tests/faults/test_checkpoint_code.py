"""Checkpoints load no code: a crafted `.pt` is refused by every reader, and its payload never runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from drive.cli import main as drive_main
from policies.checkpoint import load_policy, read_checkpoint, save_checkpoint
from policies.registry import build_policy

REPO = Path(__file__).resolve().parents[2]


class _WritesMarker:
    """Unpickling this calls `open(marker, "w")`: the file appears if the loader runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crafted(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint that is valid in every way but one: its `extra` carries the code-running object."""
    good = save_checkpoint(tmp_path / "good.pt", build_policy("cnn"))
    payload = torch.load(good, weights_only=True)
    marker = tmp_path / "PWNED"
    payload["extra"] = {"note": _WritesMarker(marker)}
    path = tmp_path / "evil.pt"
    torch.save(payload, path)
    return path, marker


def test_load_policy_and_read_checkpoint_refuse_a_crafted_file_without_running_it(tmp_path):
    path, marker = _crafted(tmp_path)
    for reader in (read_checkpoint, load_policy):
        with pytest.raises(ValueError, match=r"evil\.pt.*could run code.*--migrate-trusted"):
            reader(path)
    assert not marker.exists()


def test_drive_eval_and_export_refuse_a_crafted_file_with_one_line(tmp_path, capsys):
    path, marker = _crafted(tmp_path)
    out = tmp_path / "out"
    code = drive_main(["eval", "--policy", str(path), "--out", str(out), "--quiet", "--set", "laps=1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "evil.pt" in err and "could run code" in err and "Traceback" not in err
    assert drive_main(["export", str(path), "--out", str(out / "m.onnx")]) == 2
    assert "could run code" in capsys.readouterr().err
    assert not marker.exists() and not (out / "m.onnx").exists()


def test_a_training_checkpoint_round_trips_with_numpy_rng_state(tmp_path):
    import numpy as np

    from drive.training.state import rng_state, set_rng_state

    np.random.seed(7)  # noqa: NPY002
    state = rng_state()
    expected = np.random.random(3)  # noqa: NPY002
    extra = {"rng": state, "data": {"p": tmp_path}}
    path = save_checkpoint(tmp_path / "t.pt", build_policy("cnn"), extra=extra)
    payload = read_checkpoint(path)
    assert payload["extra"]["data"]["p"] == str(tmp_path)
    set_rng_state(payload["extra"]["rng"])
    assert np.array_equal(np.random.random(3), expected)  # noqa: NPY002


def test_an_old_trusted_checkpoint_migrates_once_and_then_loads(tmp_path):
    import numpy as np

    policy = build_policy("cnn")
    good = save_checkpoint(tmp_path / "good.pt", policy)
    payload = torch.load(good, weights_only=True)
    payload["extra"] = {"rng": {"numpy": np.random.get_state()}}  # noqa: NPY002 (what older versions wrote)
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    with pytest.raises(ValueError, match="old.pt"):
        read_checkpoint(old)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    new = tmp_path / "new.pt"
    done = subprocess.run(
        [sys.executable, "-m", "policies.checkpoint", "--migrate-trusted", str(old), str(new)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded, _ = load_policy(new)
    for key, value in policy.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
