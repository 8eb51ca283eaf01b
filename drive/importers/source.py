"""What every format reader hands to the import pipeline: a `SourceDrive`, plus the import summary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drive.importers.align import Series

FrameReader = Callable[[np.ndarray], Iterator[tuple[int, np.ndarray]]]
"""Given sorted unique frame indices (K,), yields (index, (H, W, 3) uint8 RGB image) in that order."""


@dataclass
class SourceDrive:
    """A foreign drive, read but not yet aligned.

    Attributes:
        name: a short name (the bag, tub or video's name), the default track name.
        frame_times_s: (N,) float64 strictly increasing camera frame times, s (the source's clock).
        read_frames: decodes the frames with the given indices (see `FrameReader`).
        label: raw steering samples (the unit the source records; converted by `drive.importers.steering`).
        speed: speed samples in m/s, or None when the source has none.
        pose: `x_m`, `y_m` (m) and `yaw_rad` (rad, unwrapped, counter-clockwise) samples where the source
            has them (ROS odometry), else empty.
        default_label_kind: the label kind the source implies (None: the config must say).
        default_left_positive: whether the source's positive steering is to the left.
        read: what was read, thing -> count (e.g. "camera frames (/cam, sensor_msgs/msg/Image)": 412).
        dropped: source samples left out before alignment, reason -> count.
        details: format-specific facts for meta.json (topics, files, clock).
    """

    name: str
    frame_times_s: np.ndarray
    read_frames: FrameReader
    label: Series
    speed: Series | None
    default_label_kind: str | None
    default_left_positive: bool
    pose: dict[str, Series] = field(default_factory=dict)
    read: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportSummary:
    """What an import read, wrote, and dropped and why (printed, and stored in every episode's meta.json).

    Attributes:
        format: rosbag2, donkeycar or video.
        source: the source path.
        out: the output directory.
        read: thing -> count read from the source.
        dropped_samples: reason -> source samples left out before alignment.
        dropped_steps: reason -> control steps left out by the alignment.
        grid_steps: control steps laid over the camera's time span.
        episodes: (episode directory name, frames) written.
        control_period_s: the grid's period, s.
        frames_reused: written steps that repeat the previous step's camera frame.
        steps_without_speed: written steps with speed NaN.
        labels_beyond_lock: label samples asking for more than full lock (kept, not clipped).
        conversion: the label conversion's formula.
    """

    format: str
    source: str
    out: str
    read: dict[str, int]
    dropped_samples: dict[str, int]
    dropped_steps: dict[str, int]
    grid_steps: int
    episodes: list[tuple[str, int]]
    control_period_s: float
    frames_reused: int
    steps_without_speed: int
    labels_beyond_lock: int
    conversion: str

    @property
    def frames_written(self) -> int:
        """Frames written over all episodes."""
        return sum(n for _, n in self.episodes)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (for meta.json and `--json`)."""
        return {
            "format": self.format,
            "source": self.source,
            "out": self.out,
            "read": self.read,
            "dropped_samples": self.dropped_samples,
            "dropped_steps": self.dropped_steps,
            "grid_steps": self.grid_steps,
            "episodes": [{"name": n, "frames": f} for n, f in self.episodes],
            "frames_written": self.frames_written,
            "control_period_s": self.control_period_s,
            "frames_reused": self.frames_reused,
            "steps_without_speed": self.steps_without_speed,
            "labels_beyond_lock": self.labels_beyond_lock,
            "conversion": self.conversion,
        }

    def format_text(self) -> str:
        """Human-readable lines: read, written, dropped and why."""
        rate = 1.0 / self.control_period_s
        lines = [
            f"imported {self.format} {self.source} -> {self.out}: {len(self.episodes)} episode(s), "
            f"{self.frames_written} frames ({self.frames_written * self.control_period_s:.1f} s at "
            f"{rate:g} Hz) of {self.grid_steps} control steps",
            "read: " + "; ".join(f"{v} {k}" for k, v in self.read.items()),
            f"label: {self.conversion}",
        ]
        for title, table in (
            ("dropped samples", self.dropped_samples),
            ("dropped steps", self.dropped_steps),
        ):
            if table:
                lines.append(f"{title}: " + "; ".join(f"{v} {k}" for k, v in table.items()))
        notes = (
            (self.frames_reused, "steps repeat the previous camera frame (camera slower than the grid)"),
            (self.steps_without_speed, "steps have no speed within align.speed_tolerance_s (speed_mps NaN)"),
            (self.labels_beyond_lock, "label samples beyond full lock (kept as recorded)"),
        )
        lines += [f"note: {n} {what}" for n, what in notes if n]
        lines += [f"  {name}: {frames} frames" for name, frames in self.episodes]
        return "\n".join(lines)


def source_name(path: Path) -> str:
    """The name of a source file or folder without its suffix (`drive_01.mcap` -> `drive_01`)."""
    return path.stem if path.is_file() else path.name
