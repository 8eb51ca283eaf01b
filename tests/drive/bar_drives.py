"""Synthetic recorded drives whose frames determine their labels: a bright vertical bar on a dark, textured
background, its horizontal position encoding the expert curvature (left of centre = left curve, positive).

A policy that learns the mapping beats the zero predictor by far; one that does not, cannot. Used by the
training tests and by anyone who needs a learnable recording without the simulator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recordings.synthetic import telemetry_rows
from recordings.writer import RecordingWriter

BAR_MAX_CURVATURE_1PM = 0.05
"""Labels span ±this (the default policy's curvature_scale_1pm), 1/m."""


def bar_frames_and_labels(
    num_frames: int, seed: int = 0, height: int = 78, width: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Frames (num_frames, H, W, 3) uint8 and labels (num_frames,) float32 in 1/m.

    The label is a smooth random curve (sum of two sines with seeded phases and periods); the bar's
    centre sits at x = W/2 − label / BAR_MAX_CURVATURE_1PM · (W/2 − 12) px, so left curves put it left.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames, dtype=np.float64)
    periods = rng.uniform(40.0, 90.0, 2)
    phases = rng.uniform(0.0, 2 * np.pi, 2)
    labels = 0.7 * np.sin(2 * np.pi * t / periods[0] + phases[0]) + 0.3 * np.sin(
        2 * np.pi * t / periods[1] + phases[1]
    )
    labels = (labels * BAR_MAX_CURVATURE_1PM).astype(np.float32)
    background = rng.integers(20, 70, (height, width, 3)).astype(np.uint8)
    frames = np.repeat(background[None], num_frames, axis=0)
    xs = np.arange(width)
    for i, label in enumerate(labels):
        centre = width / 2 - label / BAR_MAX_CURVATURE_1PM * (width / 2 - 12)
        frames[i, :, np.abs(xs - centre) <= 4] = 230
    return frames, labels


def write_bar_episode(path: str | Path, num_frames: int, seed: int = 0, chunk_frames: int = 32) -> Path:
    """Record one bar episode at `path` (expert_curvature_1pm = the bar's label); returns the path."""
    frames, labels = bar_frames_and_labels(num_frames, seed)
    meta = {"simulator": "synthetic", "track": "bar", "control_period_s": 0.05, "seed": seed}
    rows = telemetry_rows(num_frames, seed=seed)
    with RecordingWriter(path, image_shape=frames.shape[1:], meta=meta, chunk_frames=chunk_frames) as writer:
        for image, row, label in zip(frames, rows, labels):
            writer.append(image, {**row, "expert_curvature_1pm": float(label)})
    return Path(path)


def write_bar_drives(root: str | Path, episodes: int = 3, frames: int = 96) -> Path:
    """`episodes` bar episodes of `frames` frames under `root` (episode-000, ...); returns root."""
    root = Path(root)
    for k in range(episodes):
        write_bar_episode(root / f"episode-{k:03d}", frames, seed=k)
    return root


class BarWindows:
    """In-memory bar windows (no disk), items like recordings.dataset.WindowDataset's: dicts with
    `frames` (window, 78, 200, 3) uint8 and `labels` (window,) float32 tensors.

    Args:
        windows: number of windows.
        window: frames per window.
        seed: seed of the underlying bar episode (windows are consecutive, stride = window // 2).
    """

    def __init__(self, windows: int, window: int = 4, seed: int = 0) -> None:
        import torch

        stride = max(window // 2, 1)
        frames, labels = bar_frames_and_labels(stride * (windows - 1) + window, seed)
        self._frames = torch.from_numpy(frames)
        self._labels = torch.from_numpy(labels)
        self.window, self.stride, self.windows = window, stride, windows

    def __len__(self) -> int:
        return self.windows

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.windows:
            raise IndexError(index)
        start = index * self.stride
        stop = start + self.window
        return {"frames": self._frames[start:stop].clone(), "labels": self._labels[start:stop].clone()}
