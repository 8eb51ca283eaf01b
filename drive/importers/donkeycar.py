"""Donkeycar v2 tubs: `manifest.json`, `catalog_N.catalog` record files and `images/`.

The manifest holds five JSON lines (inputs, types, user metadata, manifest metadata, catalog metadata
with `paths` and `deleted_indexes`); each catalog holds one JSON record per line (`_index`,
`_timestamp_ms`, `cam/image_array` naming a JPEG under `images/`, `user/angle` in [-1, 1] with positive
to the right, `user/throttle`). Frames and labels share the record's timestamp. Records marked deleted,
unreadable, without an image or angle, or whose time does not advance are left out and counted; a gap
in the record sequence leaves a gap in time, which the alignment reports as dropped steps.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from drive.importers.align import Series
from drive.importers.config import ImportConfig
from drive.importers.source import SourceDrive, source_name

MANIFEST = "manifest.json"
IMAGES_DIR = "images"


def read_manifest(tub: Path) -> dict[str, Any]:
    """The manifest's catalog metadata (paths, current_index, deleted_indexes) plus `inputs`.

    Raises:
        ValueError: no manifest, or one that is not five JSON lines of the v2 layout.
    """
    path = tub / MANIFEST
    if not path.is_file():
        raise ValueError(f"{tub}: not a Donkeycar v2 tub (no {MANIFEST})")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    try:
        inputs, _types, _meta, _manifest_meta, catalogs = (json.loads(line) for line in lines[:5])
    except (ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: expected 5 JSON lines of a v2 tub manifest: {exc}") from None
    if not isinstance(catalogs, dict) or "paths" not in catalogs:
        raise ValueError(f"{path}: line 5 lacks the catalog 'paths'")
    return {**catalogs, "inputs": inputs}


def read_records(tub: Path, manifest: dict[str, Any], dropped: Counter[str]) -> list[dict[str, Any]]:
    """Every readable, not-deleted record of the tub's catalogs, in catalog order."""
    deleted = set(manifest.get("deleted_indexes", []))
    records = []
    for name in manifest["paths"]:
        path = tub / name
        if not path.is_file():
            raise ValueError(f"{path}: catalog named in {tub / MANIFEST} is missing")
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                dropped["records that are not valid JSON"] += 1
                continue
            if record.get("_index") in deleted:
                dropped["records marked deleted in the manifest"] += 1
                continue
            records.append(record)
    return records


def read_source(path: Path, config: ImportConfig) -> SourceDrive:
    """Read the tub at `path` (a directory)."""
    keys = config.donkeycar
    manifest = read_manifest(path)
    dropped: Counter[str] = Counter()
    records = read_records(path, manifest, dropped)
    total = len(records) + sum(dropped.values())
    records.sort(key=lambda r: r.get("_index", math.inf))
    times: list[float] = []
    angles: list[float] = []
    files: list[Path] = []
    indexes: list[int] = []
    for record in records:
        image, angle, stamp = (
            record.get(keys.image_key),
            record.get(keys.angle_key),
            record.get("_timestamp_ms"),
        )
        if not isinstance(stamp, (int, float)):
            dropped["records without _timestamp_ms"] += 1
        elif not isinstance(image, str) or not (path / IMAGES_DIR / image).is_file():
            dropped[f"records whose {keys.image_key} image file is missing"] += 1
        elif not isinstance(angle, (int, float)) or not math.isfinite(angle):
            dropped[f"records without a finite {keys.angle_key}"] += 1
        elif times and stamp / 1000.0 <= times[-1]:
            dropped["records whose time is not after the previous record's"] += 1
        else:
            times.append(stamp / 1000.0)
            angles.append(float(angle))
            files.append(path / IMAGES_DIR / image)
            indexes.append(int(record.get("_index", -1)))
    if not times:
        raise ValueError(f"{path}: no usable records ({dict(dropped) or 'the catalogs are empty'})")
    gaps = int(np.sum(np.diff(indexes) > 1)) if len(indexes) > 1 else 0
    frame_times = np.asarray(times, np.float64)

    def read_frames(wanted: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        for index in wanted:
            bgr = cv2.imread(str(files[int(index)]), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"{files[int(index)]}: not a readable image")
            yield int(index), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    return SourceDrive(
        name=source_name(path),
        frame_times_s=frame_times,
        read_frames=read_frames,
        label=Series(frame_times, np.asarray(angles, np.float64)),
        speed=None,
        default_label_kind="normalized",
        default_left_positive=False,  # Donkeycar: user/angle -1 is full left, +1 full right
        read={"records": total, "usable records (frame + angle)": len(times)},
        dropped=dict(dropped),
        details={
            "catalogs": list(manifest["paths"]),
            "index_gaps": gaps,
            "keys": [keys.image_key, keys.angle_key],
        },
    )
