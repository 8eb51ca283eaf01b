"""Put a foreign drive on the control-rate grid: one camera frame and one label per control step.

Sources give camera frame times, label samples and (maybe) speed samples, each on its own clock and
rate. `align` lays the grid t_k = t_0 + k · period over the camera's time span and, for every step,
picks the nearest frame and a label (nearest or interpolated) within the configured tolerances. A
step that lacks either is dropped with its reason and ends the episode: a label is never taken from
further away than the tolerance, so labels are never silently shifted against their frames.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from drive.importers.config import AlignConfig


@dataclass(frozen=True)
class Series:
    """Time-stamped scalar samples.

    Attributes:
        times_s: (M,) float64, strictly increasing, s.
        values: (M,) float64, finite.
    """

    times_s: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        if self.times_s.shape != self.values.shape or self.times_s.ndim != 1:
            raise ValueError(f"Series: times {self.times_s.shape} and values {self.values.shape} differ")
        if len(self.times_s) > 1 and not np.all(np.diff(self.times_s) > 0):
            raise ValueError("Series: times must increase strictly")


@dataclass(frozen=True)
class Segment:
    """A run of consecutive valid control steps: one future episode.

    Attributes:
        steps: (K,) int64 grid indices k (consecutive).
        times_s: (K,) float64 grid times t_k, on the source's clock, s.
        frame_index: (K,) int64 index of the source frame of each step (non-decreasing).
        label: (K,) float64 label of each step (whatever the label series holds, e.g. 1/m).
        speed_mps: (K,) float64 speed of each step, NaN where none was within tolerance.
    """

    steps: np.ndarray
    times_s: np.ndarray
    frame_index: np.ndarray
    label: np.ndarray
    speed_mps: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class Alignment:
    """The segments to write and what happened to every grid step.

    Attributes:
        segments: the episodes to write, in time order.
        grid_steps: control steps laid over the camera's time span.
        dropped: reason -> number of control steps dropped for it.
        frames_reused: steps that took the same frame as the step before (camera slower than the grid).
        steps_without_speed: written steps whose speed is NaN.
        t0_s: the grid's first time, on the source clock, s.
    """

    segments: tuple[Segment, ...]
    grid_steps: int
    dropped: dict[str, int]
    frames_reused: int
    steps_without_speed: int
    t0_s: float


def nearest(times_s: np.ndarray, query_s: np.ndarray, tolerance_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest sample of sorted `times_s` (M,) to each query (K,), and whether it is within
    `tolerance_s`. Returns ((K,) int64 indices, (K,) bool valid); all invalid when M == 0."""
    if len(times_s) == 0:
        return np.zeros(len(query_s), np.int64), np.zeros(len(query_s), bool)
    right = np.clip(np.searchsorted(times_s, query_s), 0, len(times_s) - 1)
    left = np.clip(right - 1, 0, len(times_s) - 1)
    take_left = np.abs(query_s - times_s[left]) <= np.abs(times_s[right] - query_s)
    index = np.where(take_left, left, right).astype(np.int64)
    return index, np.abs(times_s[index] - query_s) <= tolerance_s + 1e-9


def sample(
    series: Series, query_s: np.ndarray, method: str, tolerance_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Values of `series` at the query times (K,) and whether each is valid.

    `nearest`: the nearest sample within `tolerance_s`. `interpolate`: linear between the samples just
    before and just after the query, valid when they are at most 2 · tolerance_s apart (an exact hit
    is always valid). Invalid entries are NaN.
    """
    index, valid = nearest(series.times_s, query_s, tolerance_s)
    if method == "nearest" or len(series.times_s) < 2:
        values = np.where(valid, series.values[index] if len(series.values) else np.nan, np.nan)
        return values, valid
    t, v = series.times_s, series.values
    hi = np.clip(np.searchsorted(t, query_s, side="right"), 1, len(t) - 1)
    lo = hi - 1
    exact = np.abs(t[index] - query_s) <= 1e-9
    inside = (t[lo] <= query_s) & (query_s <= t[hi]) & (t[hi] - t[lo] <= 2 * tolerance_s + 1e-9)
    frac = np.clip((query_s - t[lo]) / (t[hi] - t[lo]), 0.0, 1.0)
    interpolated = v[lo] + frac * (v[hi] - v[lo])
    valid = exact | inside
    return np.where(exact, v[index], np.where(inside, interpolated, np.nan)), valid


def align(frame_times_s: np.ndarray, label: Series, speed: Series | None, config: AlignConfig) -> Alignment:
    """Lay the control grid over the camera frames and pick a frame, label and speed for each step.

    Args:
        frame_times_s: (N,) float64 strictly increasing camera frame times, s.
        label: the label samples (already converted, e.g. curvature in 1/m).
        speed: speed samples in m/s, or None.
        config: period, method, tolerances, shortest episode.

    Raises:
        ValueError: no camera frames, or camera times that do not increase.
    """
    if len(frame_times_s) == 0:
        raise ValueError("the source holds no camera frames")
    if len(frame_times_s) > 1 and not np.all(np.diff(frame_times_s) > 0):
        raise ValueError("camera frame times must increase strictly")
    period = config.control_period_s
    t0 = float(frame_times_s[0])
    # + 1e-3: epoch-scale stamps (1.7e9 s) carry ~1e-7 s of rounding; a last frame 0.1 µs early still counts
    count = int(np.floor((frame_times_s[-1] - t0) / period + 1e-3)) + 1
    grid = t0 + period * np.arange(count)
    frame_index, frame_ok = nearest(frame_times_s, grid, config.frame_tolerance_s)
    labels, label_ok = sample(label, grid, config.method, config.label_tolerance_s)
    speeds = np.full(count, np.nan)
    if speed is not None:
        speeds, _ = sample(speed, grid, config.method, config.speed_tolerance_s)

    reasons: Counter[str] = Counter()
    reasons["no camera frame within align.frame_tolerance_s"] = int(np.sum(~frame_ok))
    reasons["no steering label within align.label_tolerance_s"] = int(np.sum(frame_ok & ~label_ok))
    ok = frame_ok & label_ok
    segments = []
    short = 0
    for start, stop in _runs(ok):
        if stop - start < config.min_episode_frames:
            short += stop - start
            continue
        sl = slice(start, stop)
        segments.append(
            Segment(np.arange(start, stop, dtype=np.int64), grid[sl], frame_index[sl], labels[sl], speeds[sl])
        )
    reasons["in a run shorter than align.min_episode_frames"] = short
    reused = sum(int(np.sum(np.diff(s.frame_index) == 0)) for s in segments)
    without_speed = sum(int(np.sum(np.isnan(s.speed_mps))) for s in segments)
    return Alignment(
        segments=tuple(segments),
        grid_steps=count,
        dropped={k: v for k, v in reasons.items() if v},
        frames_reused=reused,
        steps_without_speed=without_speed,
        t0_s=t0,
    )


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of every run of True in a (K,) bool array."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
