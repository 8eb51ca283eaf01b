"""meta.json: what an episode is (simulator, track, condition, seed, config) and how it is stored.

The writer puts `meta.json` down when the episode opens (`complete: false`, `num_frames: 0`) and
rewrites it atomically at close with the final frame count and `complete: true`. A recorder that was
killed leaves `complete: false`; readers then count frames from the committed telemetry parts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from recordings.layout import FORMAT_VERSION, RecordingError, to_json
from recordings.schema import (
    ALLOWED_DTYPES,
    FRAMES_STREAM,
    ArraySpec,
    Column,
    check_name,
    check_shape,
)

REQUIRED_USER_KEYS = ("simulator", "track", "control_period_s")
"""Keys the writer's `meta` argument must hold."""
OPTIONAL_USER_KEYS: dict[str, Any] = {"condition": "default", "seed": None, "config": {}, "extra": {}}
"""Keys the writer's `meta` argument may hold, with their defaults."""


def build_meta(
    user_meta: Mapping[str, Any],
    *,
    columns: tuple[Column, ...],
    arrays: tuple[ArraySpec, ...],
    chunk_frames: int,
) -> dict[str, Any]:
    """The meta.json content of a new episode from the writer's `meta` argument.

    Args:
        user_meta: simulator (str), track (str, track or town name), control_period_s (float > 0, s),
            and optionally condition (str), seed (int or None), config (dict: the resolved config),
            extra (dict: free-form).
        columns: the telemetry columns (base + extra).
        arrays: the array streams, frames first.
        chunk_frames: frames per chunk along T.

    Raises:
        ValueError: a key is missing or unknown, or a value has the wrong type (the key is named).
        TypeError: config or extra holds something JSON cannot store.
    """
    if not isinstance(user_meta, Mapping):
        raise ValueError(f"meta must be a dict, got {type(user_meta).__name__}")
    unknown = sorted(set(user_meta) - set(REQUIRED_USER_KEYS) - set(OPTIONAL_USER_KEYS))
    if unknown:
        raise ValueError(
            f"meta: unknown key {unknown[0]!r}; allowed: "
            f"{', '.join(REQUIRED_USER_KEYS + tuple(OPTIONAL_USER_KEYS))} (put free-form values in 'extra')"
        )
    for key in REQUIRED_USER_KEYS:
        if key not in user_meta:
            raise ValueError(f"meta: missing key {key!r}")
    values = {**OPTIONAL_USER_KEYS, **user_meta}
    _check_user_values(values, ValueError, "meta")
    meta = {
        "format_version": FORMAT_VERSION,
        "simulator": values["simulator"],
        "track": values["track"],
        "condition": values["condition"],
        "seed": None if values["seed"] is None else int(values["seed"]),
        "control_period_s": float(values["control_period_s"]),
        "image_shape": list(arrays[0].shape),
        "chunk_frames": int(chunk_frames),
        "columns": [c.to_dict() for c in columns],
        "arrays": {a.name: a.to_dict() for a in arrays[1:]},
        "config": dict(values["config"]),
        "extra": dict(values["extra"]),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "num_frames": 0,
        "complete": False,
    }
    to_json(meta)  # fail now, naming the type, rather than at close
    return meta


def _check_user_values(values: Mapping[str, Any], error: type[Exception], where: str) -> None:
    for key in ("simulator", "track", "condition"):
        if not isinstance(values[key], str) or not values[key]:
            raise error(f"{where}: {key!r} must be a non-empty string, got {values[key]!r}")
    seed = values["seed"]
    if seed is not None and (isinstance(seed, bool) or not _is_int(seed)):
        raise error(f"{where}: 'seed' must be an int or None, got {seed!r}")
    period = values["control_period_s"]
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not (period > 0):
        raise error(f"{where}: 'control_period_s' must be a positive number of seconds, got {period!r}")
    if not math.isfinite(float(period)):
        raise error(f"{where}: 'control_period_s' must be finite, got {period!r}")
    for key in ("config", "extra"):
        if not isinstance(values[key], Mapping):
            raise error(f"{where}: {key!r} must be a dict, got {type(values[key]).__name__}")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer))


def read_meta(path: Path) -> dict[str, Any]:
    """Load and check `path` (an episode's meta.json).

    Returns:
        The meta dict, with every key described in `build_meta` plus `num_frames` and `complete`.

    Raises:
        RecordingError: naming `path`, when the file is missing, unreadable, not JSON, from a newer
            format, or a key is missing or of the wrong type.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError as exc:
        raise RecordingError(f"{path}: missing (not a recording, or it never started)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{path}: unreadable: {exc}") from exc
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordingError(f"{path}: not valid JSON (truncated or corrupt): {exc}") from exc
    if not isinstance(meta, dict):
        raise RecordingError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    try:
        _check_stored(meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordingError(f"{path}: {exc}") from exc
    return meta


def _check_stored(meta: dict[str, Any]) -> None:
    """Raise KeyError/TypeError/ValueError describing the first problem in a stored meta dict."""
    version = meta["format_version"]
    if not _is_int(version) or isinstance(version, bool) or version < 1:
        raise ValueError(f"bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"format_version {version} is newer than this reader ({FORMAT_VERSION}); upgrade")
    _check_user_values(meta, ValueError, "meta")
    meta_image_shape(meta)
    chunk = meta["chunk_frames"]
    if not _is_int(chunk) or isinstance(chunk, bool) or chunk < 1:
        raise ValueError(f"'chunk_frames' must be a positive int, got {chunk!r}")
    meta_columns(meta)
    meta_arrays(meta)
    frames = meta["num_frames"]
    if not _is_int(frames) or isinstance(frames, bool) or frames < 0:
        raise ValueError(f"'num_frames' must be a non-negative int, got {frames!r}")
    if not isinstance(meta["complete"], bool):
        raise ValueError(f"'complete' must be a bool, got {meta['complete']!r}")
    if not isinstance(meta["created_utc"], str):
        raise ValueError(f"'created_utc' must be a string, got {meta['created_utc']!r}")


def meta_image_shape(meta: Mapping[str, Any]) -> tuple[int, int, int]:
    """The (H, W, 3) image shape stored in `meta`."""
    shape = check_shape(meta["image_shape"], "image_shape")
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"'image_shape' must be [H, W, 3], got {meta['image_shape']!r}")
    return shape[0], shape[1], shape[2]


def meta_columns(meta: Mapping[str, Any]) -> tuple[Column, ...]:
    """The telemetry columns declared in `meta`, in storage order."""
    raw = meta["columns"]
    if not isinstance(raw, list) or not raw:
        raise ValueError("'columns' must be a non-empty list")
    columns = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise ValueError(f"'columns' entry must be an object, got {entry!r}")
        column = Column(entry["name"], entry["dtype"], entry.get("unit", ""), entry.get("doc", ""))
        check_name(column.name, "column")
        if column.dtype not in ALLOWED_DTYPES:
            raise ValueError(f"column {column.name!r}: bad dtype {column.dtype!r}")
        columns.append(column)
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise ValueError("'columns' names are not unique")
    for required in ("frame", "timestamp_s"):
        if required not in names:
            raise ValueError(f"'columns' lacks {required!r}")
    return tuple(columns)


def meta_arrays(meta: Mapping[str, Any]) -> tuple[ArraySpec, ...]:
    """All array streams of `meta`: frames first, then the extra arrays."""
    specs = [ArraySpec(FRAMES_STREAM, meta_image_shape(meta), "uint8")]
    raw = meta["arrays"]
    if not isinstance(raw, dict):
        raise ValueError("'arrays' must be an object")
    for name, entry in raw.items():
        check_name(name, "array")
        if name == FRAMES_STREAM or not isinstance(entry, dict):
            raise ValueError(f"bad 'arrays' entry {name!r}")
        if entry.get("dtype") not in ALLOWED_DTYPES:
            raise ValueError(f"array {name!r}: bad dtype {entry.get('dtype')!r}")
        specs.append(ArraySpec(name, check_shape(entry["shape"], f"array {name!r}"), entry["dtype"]))
    return tuple(specs)
