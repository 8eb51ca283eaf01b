"""Reading imported episodes back for the importer tests: telemetry, frames, meta, one training step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from drive.cli import main
from recordings.catalog import find_episodes
from recordings.reader import Recording
from recordings.validate import validate
from tests.importers.makers import index_shown


def episodes(out: Path) -> list[Path]:
    """The imported episodes under `out`, each validated (every chunk decoded)."""
    found = find_episodes(out)
    for path in found:
        assert validate(path).complete
    return found


def telemetry(path: Path) -> dict[str, np.ndarray]:
    """The episode's telemetry columns."""
    rec = Recording(path)
    return {name: np.asarray(rec.telemetry[name]) for name in rec.telemetry}


def shown_source_frames(path: Path) -> np.ndarray:
    """(T,) the source frame index each imported frame shows, read off its stripes."""
    import zarr

    frames = zarr.open_array(path / "frames.zarr", mode="r")[:]
    assert frames.shape[1:] == (78, 200, 3)
    return np.array([index_shown(frame) for frame in frames])


def meta(path: Path) -> dict[str, Any]:
    """The episode's meta.json."""
    loaded: dict[str, Any] = json.loads((path / "meta.json").read_text())
    return loaded


def train_one_step(data: Path, out: Path, capsys: Any) -> dict[str, Any]:
    """`drive train` for one step on the imported episodes; returns its summary."""
    args = ["train", "--data", str(data), "--out", str(out)]
    for setting in (
        "max_steps=1",
        "batch=1",
        "data.window=4",
        "data.val_fraction=0",
        "progress=false",
        "threads=1",
        "device=cpu",
    ):
        args += ["--set", setting]
    capsys.readouterr()
    assert main(args) == 0, capsys.readouterr().err
    summary: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 1
    return summary
