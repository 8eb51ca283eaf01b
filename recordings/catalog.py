"""Find episodes in a directory tree and summarise them (for `drive recordings info`)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recordings.layout import META_FILE, TELEMETRY_DIR, ZARR_SUFFIX, RecordingError
from recordings.reader import Recording

LABEL_COLUMN = "expert_curvature_1pm"


def find_episodes(root: str | Path) -> list[Path]:
    """Every episode directory under `root`, `root` included, sorted by path.

    An episode directory holds meta.json, or, when meta.json was lost, a `telemetry/` directory or a
    `.zarr` stream: such a damaged episode is listed too (reading it then raises RecordingError naming
    the missing meta.json), so it never silently drops out of validate, info or training.
    Does not descend into episodes, zarr stores or hidden directories.

    Raises:
        FileNotFoundError: `root` is not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if META_FILE in filenames or any(d == TELEMETRY_DIR or d.endswith(ZARR_SUFFIX) for d in dirnames):
            found.append(Path(dirpath))
            dirnames.clear()
            continue
        dirnames[:] = [
            d
            for d in dirnames
            if not d.startswith(".") and not d.endswith(ZARR_SUFFIX) and d != TELEMETRY_DIR
        ]
    return sorted(found)


@dataclass
class RecordingsSummary:
    """Totals over the episodes under a directory.

    Attributes:
        root: the directory summarised.
        episodes: readable episodes.
        incomplete: of those, episodes whose writer did not close them (killed or aborted).
        frames: committed frames over all episodes.
        duration_s: frames times control period, summed, s.
        distance_km: distance driven, the sum of positive steps of `progress_m`, km.
        conditions: condition name -> number of episodes.
        tracks: track name -> number of episodes.
        label_mean, label_std, label_min, label_max: statistics of `expert_curvature_1pm` over all
            frames (NaN labels ignored), 1/m; NaN when there are no labels.
        broken: (episode path, error message) for each episode that could not be read.
    """

    root: Path
    episodes: int = 0
    incomplete: int = 0
    frames: int = 0
    duration_s: float = 0.0
    distance_km: float = 0.0
    conditions: dict[str, int] = field(default_factory=dict)
    tracks: dict[str, int] = field(default_factory=dict)
    label_mean: float = math.nan
    label_std: float = math.nan
    label_min: float = math.nan
    label_max: float = math.nan
    broken: list[tuple[Path, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (paths as strings)."""
        out = dict(self.__dict__)
        out["root"] = str(self.root)
        out["broken"] = [[str(p), msg] for p, msg in self.broken]
        return out

    def format(self) -> str:
        """A short human-readable report."""
        lines = [
            f"recordings under {self.root}",
            f"  episodes     {self.episodes} ({self.incomplete} incomplete, {len(self.broken)} broken)",
            f"  frames       {self.frames}",
            f"  duration     {self.duration_s / 60:.1f} min",
            f"  distance     {self.distance_km:.2f} km",
            f"  conditions   {_counts(self.conditions)}",
            f"  tracks       {_counts(self.tracks)}",
            f"  label {LABEL_COLUMN}: mean {self.label_mean:.4f} std {self.label_std:.4f} "
            f"min {self.label_min:.4f} max {self.label_max:.4f} (1/m)",
        ]
        lines += [f"  BROKEN {path}: {msg}" for path, msg in self.broken]
        return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} ({n})" for name, n in sorted(counts.items())) or "-"


def summarize(root: str | Path) -> RecordingsSummary:
    """Summarise every episode under `root` (reads meta.json and telemetry, not frames).

    Episodes that raise RecordingError are listed in `broken`, not fatal.
    """
    summary = RecordingsSummary(root=Path(root))
    count, mean, m2 = 0, 0.0, 0.0  # running count, mean and sum of squared deviations (Chan et al.)
    lo, hi = math.inf, -math.inf
    for path in find_episodes(root):
        try:
            rec = Recording(path)
        except RecordingError as exc:
            summary.broken.append((path, str(exc)))
            continue
        summary.episodes += 1
        summary.incomplete += not rec.complete
        summary.frames += rec.num_frames
        summary.duration_s += rec.duration_s
        summary.conditions[rec.meta["condition"]] = summary.conditions.get(rec.meta["condition"], 0) + 1
        summary.tracks[rec.meta["track"]] = summary.tracks.get(rec.meta["track"], 0) + 1
        if "progress_m" in rec.telemetry:
            # Positive steps only: robust to a progress counter that wraps at the end of a lap.
            steps = np.diff(rec.telemetry["progress_m"].astype(np.float64))
            summary.distance_km += float(steps[steps > 0].sum()) / 1000.0
        if LABEL_COLUMN in rec.telemetry:
            labels = rec.telemetry[LABEL_COLUMN].astype(np.float64)
            labels = labels[np.isfinite(labels)]
            if len(labels):
                n, batch_mean = len(labels), float(labels.mean())
                delta = batch_mean - mean
                mean += delta * n / (count + n)
                m2 += float(np.square(labels - batch_mean).sum()) + delta**2 * count * n / (count + n)
                count += n
                lo, hi = min(lo, float(labels.min())), max(hi, float(labels.max()))
    if count:
        summary.label_mean = mean
        summary.label_std = math.sqrt(m2 / count)
        summary.label_min, summary.label_max = lo, hi
    return summary
