"""Importers: ROS 2 bags (MCAP), Donkeycar tubs and video + CSV logs become ordinary recordings.

Each format is a module with `read_source(path, config) -> SourceDrive`; `import_source` runs the shared
pipeline (label -> curvature, alignment to the control rate, crop/resize, episode writing).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from drive.importers.config import ImportConfig
from drive.importers.source import ImportSummary, SourceDrive

FORMATS = {
    "rosbag2": "drive.importers.rosbag2",
    "donkeycar": "drive.importers.donkeycar",
    "video": "drive.importers.video",
}
"""Format name -> module holding its `read_source`."""


def read_source(format_name: str, path: str | Path, config: ImportConfig) -> SourceDrive:
    """Read a drive in format `format_name` (a key of FORMATS) from `path`.

    Raises:
        ValueError: an unknown format, or a source that cannot be read (the file and reason named).
        FileNotFoundError: `path` does not exist.
    """
    if format_name not in FORMATS:
        raise ValueError(f"unknown import format {format_name!r}; known: {', '.join(FORMATS)}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    module = importlib.import_module(FORMATS[format_name])
    source: SourceDrive = module.read_source(path, config)
    return source


def import_source(
    format_name: str, path: str | Path, out_dir: str | Path, config: ImportConfig, progress: bool = False
) -> ImportSummary:
    """Read `path` as `format_name` and write its episodes under `out_dir`; returns the summary."""
    from drive.importers.pipeline import check_out, import_drive

    check_out(Path(out_dir))  # before reading a long source: an occupied --out fails at once
    source = read_source(format_name, path, config)
    return import_drive(source, config, out_dir, format_name=format_name, source_path=path, progress=progress)


__all__ = ["FORMATS", "ImportConfig", "ImportSummary", "SourceDrive", "import_source", "read_source"]
