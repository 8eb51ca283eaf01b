"""`drive sim preview`: look at the embedded simulator — camera frames across conditions, the track
map with a driven trajectory, and an mp4 of a short drive."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from drive.closed_loop.drivers import ExpertDriver
from drive.closed_loop.loop import EpisodeLimits, run_episode
from sim.conditions import CONDITIONS
from sim.embedded.simulator import EmbeddedSimConfig, EmbeddedSimulator
from sim.expert import PerturbationConfig
from sim.tracks.track import Track

SCALE = 3
"""Upscaling of the 78x200 frames in the grid and the video, so details are visible."""


def preview(track: str, out_dir: str | Path, *, seed: int = 0, seconds: float = 20.0) -> dict[str, Path]:
    """Write `frames_grid.png`, `track_map.png` and `drive.mp4` for `track` into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = EmbeddedSimConfig(track=track)
    paths = {"grid": out / "frames_grid.png", "map": out / "track_map.png", "video": out / "drive.mp4"}
    cv2.imwrite(str(paths["grid"]), cv2.cvtColor(_condition_grid(base, seed), cv2.COLOR_RGB2BGR))
    with EmbeddedSimulator(base) as sim:
        result = run_episode(
            sim,
            ExpertDriver(PerturbationConfig()),
            seed=seed,
            limits=EpisodeLimits(max_time_s=seconds),
            keep_frames=True,
        )
        _track_map(sim.track, result.telemetry, paths["map"])
    assert result.frames is not None  # for mypy: keep_frames=True keeps them
    _video(result.frames, result.telemetry, paths["video"], fps=int(round(1.0 / base.dt_ctrl_s)))
    return paths


def _condition_grid(base: EmbeddedSimConfig, seed: int, columns: int = 3) -> np.ndarray:
    """Rows: conditions; columns: frames at evenly spaced places along the track."""
    rows = []
    for condition in CONDITIONS:
        config = dataclasses.replace(base, condition=condition)
        tiles = []
        with EmbeddedSimulator(config) as sim:
            length = sim.track.length_m
            for k in range(columns):
                obs, _ = sim.reset(seed=seed, options={"start_s_m": length * k / columns})
                tile = cv2.resize(obs.image, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
                cv2.putText(tile, condition, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
                tiles.append(tile)
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def _track_map(track: Track, telemetry: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xy = track.centre_xy_m
    normal = np.stack([-np.sin(track.heading_rad), np.cos(track.heading_rad)], axis=1)
    span = np.ptp(xy, axis=0) + 2 * track.road_half_width_m
    fig, ax = plt.subplots(figsize=(8.5, float(np.clip(7.0 * span[1] / span[0], 3.5, 9.0)) + 1.0))
    for side in (-1, 1):
        edge = xy + side * track.road_half_width_m * normal
        ax.plot(*np.vstack([edge, edge[:1]]).T, color="0.4", lw=0.8)
    ax.plot(*np.vstack([xy, xy[:1]]).T, color="0.7", lw=0.6, ls="--", label="lane centre")
    sc = ax.scatter(
        telemetry["x_m"],
        telemetry["y_m"],
        c=telemetry["lateral_offset_m"],
        s=3,
        cmap="coolwarm",
        vmin=-0.5,
        vmax=0.5,
        label="expert with recovery pulses",
    )
    fig.colorbar(sc, ax=ax, shrink=0.7, label="lateral offset (m, left +)")
    ax.plot(telemetry["x_m"][0], telemetry["y_m"][0], "k^", ms=8, label="start")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"track {track.name}: {track.length_m:.0f} m, marking {track.marking}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _video(frames: np.ndarray, telemetry: dict[str, np.ndarray], path: Path, fps: int) -> None:
    h, w = frames.shape[1] * SCALE, frames.shape[2] * SCALE
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"cannot open an mp4 writer for {path}")
    try:
        for frame, executed, label in zip(
            frames, telemetry["curvature_1pm"], telemetry["expert_curvature_1pm"]
        ):
            big = cv2.resize(frame, (w, h), interpolation=cv2.INTER_NEAREST)
            bgr = cv2.cvtColor(big, cv2.COLOR_RGB2BGR)
            _steering_bar(bgr, executed, (0, 200, 255), h - 24)
            _steering_bar(bgr, label, (80, 255, 80), h - 12)
            writer.write(bgr)
    finally:
        writer.release()


def _steering_bar(
    image: np.ndarray, curvature_1pm: float, color: tuple[int, int, int], y: int, full_scale_1pm: float = 0.08
) -> None:
    """A horizontal bar from the centre: left for positive (left) curvature."""
    w = image.shape[1]
    centre = w // 2
    end = int(centre - np.clip(curvature_1pm / full_scale_1pm, -1, 1) * (w // 2 - 4))
    cv2.line(image, (centre, y), (end, y), color, 5)
