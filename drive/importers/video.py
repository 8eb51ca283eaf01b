"""A video file (decoded with PyAV) plus a CSV log of timestamp, steering and optionally speed.

The video's presentation times (its own clock, 0 at the first frame) are moved onto the CSV's clock
by `video.video_start_s`. CSV rows without a timestamp or steering value are left out and counted;
timestamps that do not increase are an error naming the row (a log out of order is a broken clock
or a broken export, and sorting it would hide that).
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from drive.importers.align import Series
from drive.importers.config import ImportConfig, VideoConfig
from drive.importers.optional import require
from drive.importers.source import SourceDrive, source_name

TIME_SCALE_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def _number(text: str | None) -> float:
    """A CSV cell as a float; NaN for empty or non-numeric cells."""
    try:
        return float(text) if text is not None and text.strip() else math.nan
    except ValueError:
        return math.nan


def read_csv(path: Path, video: VideoConfig) -> tuple[Series, Series | None, int, Counter[str]]:
    """(steering samples, speed samples or None, rows read, dropped rows by reason) of the CSV log.

    Raises:
        ValueError: a named column is missing, or timestamps do not increase (the row is named).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: CSV log not found (set video.csv)")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        wanted = [video.time_column, video.steering_column] + (
            [video.speed_column] if video.speed_column else []
        )
        for column in wanted:
            if column not in fields:
                raise ValueError(f"{path}: no column {column!r} (columns: {', '.join(fields)})")
        rows = list(reader)
    scale = TIME_SCALE_S[video.time_unit]
    dropped: Counter[str] = Counter()
    times: list[tuple[float, str]] = []  # (time in s, the cell as written, for error messages)
    steer: list[tuple[float, float]] = []
    speed: list[tuple[float, float]] = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        t, s = _number(row[video.time_column]) * scale, _number(row[video.steering_column])
        if not math.isfinite(t):
            dropped[f"CSV rows without a {video.time_column}"] += 1
            continue
        if times and t <= times[-1][0]:
            raise ValueError(
                f"{path}: line {line}: {video.time_column} {row[video.time_column]} is not after the "
                f"previous row's ({times[-1][1]}); the log is unsorted or has duplicate times"
            )
        times.append((t, row[video.time_column]))
        if not math.isfinite(s):
            dropped[f"CSV rows without a {video.steering_column}"] += 1
        else:
            steer.append((t, s))
        v = _number(row[video.speed_column]) if video.speed_column else math.nan
        if video.speed_column and math.isfinite(v):
            speed.append((t, v))
    if not steer:
        raise ValueError(f"{path}: no row has both a {video.time_column} and a {video.steering_column}")
    label = Series(np.array([t for t, _ in steer]), np.array([s for _, s in steer]))
    speeds = Series(np.array([t for t, _ in speed]), np.array([v for _, v in speed])) if speed else None
    return label, speeds, len(rows), dropped


def read_source(path: Path, config: ImportConfig) -> SourceDrive:
    """Read the video at `path` and its CSV log (`video.csv`, default: the video's path with `.csv`)."""
    av = require("av", "the video importer")
    video = config.video
    csv_path = Path(video.csv) if video.csv else path.with_suffix(".csv")
    label, speed, rows, dropped = read_csv(csv_path, video)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None)
            time_base = float(stream.time_base)
    except (av.error.FFmpegError, IndexError) as exc:
        raise ValueError(f"{path}: not a readable video: {exc}") from None
    if not pts:
        raise ValueError(f"{path}: the video holds no frames")
    frame_times = np.asarray(pts, np.float64) * time_base + video.video_start_s
    index_of_pts = {p: i for i, p in enumerate(pts)}

    def read_frames(wanted: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        wanted_set = set(int(i) for i in wanted)
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                index = index_of_pts.get(frame.pts)
                if index is not None and index in wanted_set:
                    yield index, frame.to_ndarray(format="rgb24")

    read = {"video frames": len(pts), "CSV rows": rows, "steering samples": len(label.times_s)}
    if speed is not None:
        read["speed samples"] = len(speed.times_s)
    return SourceDrive(
        name=source_name(path),
        frame_times_s=frame_times,
        read_frames=read_frames,
        label=label,
        speed=speed,
        default_label_kind=None,
        default_left_positive=True,
        read=read,
        dropped=dict(dropped),
        details={
            "csv": str(csv_path.resolve()),
            "video_time_base_s": time_base,
            "video_start_s": video.video_start_s,
        },
    )
