"""Where things live inside an episode directory, and the one error type of the format.

An episode is a directory (e.g. `<out>/episode-0003/`) holding:

- `meta.json`: format version, simulator, track, condition, seed, control period, image size, the
  resolved config, the declared columns and arrays, `num_frames` and `complete` (see `recordings.meta`).
- `frames.zarr`: zarr v3 array, (T, H, W, 3) uint8 RGB, one file per `chunk_frames` frames along T
  (`frames.zarr/c/<k>/0/0/0`; a zarr shard of inner chunks of `decode_frames` frames, so random reads
  decode little), zstd-compressed and crc32c-checksummed (so damage is detected, never returned).
  Any zarr v3 reader opens it: `zarr.open_array(episode / "frames.zarr")[:]`.
- `<name>.zarr`: one more zarr v3 array per declared extra per-frame stream, same layout along T.
- `telemetry/part-00012.parquet`: telemetry rows of chunk 12 (rows 12*chunk_frames ...). Every part
  but the last holds exactly `chunk_frames` rows. `pyarrow.dataset.dataset(episode / "telemetry")` or
  `pandas.read_parquet(episode / "telemetry")` opens the whole table (in-progress `.tmp` files start
  with a dot, which both skip).

The telemetry part is the commit marker of its chunk: the writer stores the chunk's frames and arrays
first, then renames the part into place, so the committed frame count is the row count of the parts.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
"""Version of this on-disk layout; readers refuse newer versions."""

META_FILE = "meta.json"
TELEMETRY_DIR = "telemetry"
ZARR_SUFFIX = ".zarr"
ZARR_META_FILE = "zarr.json"
PART_RE = re.compile(r"^part-(\d{5,})\.parquet$")


class RecordingError(ValueError):
    """A recording on disk is missing, truncated, corrupt or inconsistent; the message names the file."""


def part_name(index: int) -> str:
    """File name of telemetry part `index` (the rows of chunk `index`)."""
    return f"part-{index:05d}.parquet"


def stream_dir(episode: Path, name: str) -> Path:
    """Directory of the zarr array of stream `name` (`frames` or an extra array)."""
    return episode / f"{name}{ZARR_SUFFIX}"


def chunk_file(episode: Path, name: str, ndim: int, index: int) -> Path:
    """The file of chunk `index` (along T) of an `ndim`-dimensional stream, zarr v3 default key encoding.

    Only T is chunked, so every other chunk coordinate is 0: `frames.zarr/c/12/0/0/0`.
    """
    return stream_dir(episode, name).joinpath("c", str(index), *(["0"] * (ndim - 1)))


def list_parts(telemetry_dir: Path) -> list[tuple[int, Path]]:
    """Committed telemetry parts as (index, path), sorted by index; temporary files are ignored.

    Raises:
        RecordingError: the directory is missing or unreadable.
    """
    try:
        names = os.listdir(telemetry_dir)
    except OSError as exc:
        raise RecordingError(f"{telemetry_dir}: cannot list telemetry parts: {exc}") from exc
    parts = []
    for name in names:
        match = PART_RE.match(name)
        if match:
            parts.append((int(match.group(1)), telemetry_dir / name))
    return sorted(parts)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a dot-prefixed temporary file and a rename.

    A reader (or a crash) sees either the old file or the whole new one, never a torn one.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    """JSON form of numpy scalars/arrays and paths, which resolved configs often hold."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any) -> str:
    """Pretty JSON text of `value`; numpy values and paths are converted, anything else is a TypeError."""
    return json.dumps(value, indent=2, sort_keys=False, default=_json_default) + "\n"
