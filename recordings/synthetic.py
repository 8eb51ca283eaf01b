"""Synthetic episodes for tests and benchmarks: road-like camera frames and consistent telemetry.

The frames look like a forward camera (sky, horizon, grass, a curving grey road with dashed markings,
mild sensor noise) so compression and decode speeds resemble real recordings; pure noise or all-zero
frames would make both meaningless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recordings.writer import DEFAULT_CHUNK_FRAMES, RecordingWriter

SYNTHETIC_CONTROL_PERIOD_S = 0.05
"""Control period of synthetic episodes: 20 Hz, the stack's default."""
SYNTHETIC_SPEED_MPS = 4.47
"""Speed of synthetic episodes: the NCP paper's constant 4.47 m/s."""


def camera_like_frames(num_frames: int, height: int = 78, width: int = 200, seed: int = 0) -> np.ndarray:
    """Road-scene frames that change smoothly from frame to frame.

    Returns:
        (num_frames, height, width, 3) uint8 RGB.
    """
    rng = np.random.default_rng(seed)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    horizon = 0.35 * height
    depth = np.clip((ys - horizon) / (height - horizon), 0.0, 1.0)  # 0 at the horizon, 1 at the bottom
    below = ys >= horizon
    # Coarse texture, upsampled: grass and tarmac are blotchy, not per-pixel noise.
    coarse = rng.normal(0.0, 1.0, (height // 4 + 2, width // 4 + 2)).astype(np.float32)
    texture = np.kron(coarse, np.ones((4, 4), np.float32))[:height, :width]
    sky = np.stack([110 + 60 * ys / horizon, 150 + 50 * ys / horizon, 235 - 20 * ys / horizon], -1)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        bend_px = 0.3 * width * np.sin(2 * np.pi * t / 240.0 + seed)
        centre_x = width / 2 + bend_px * (1 - depth) ** 2 + 6 * np.sin(2 * np.pi * t / 60.0)
        offset = np.abs(xs - centre_x)
        half_width = 0.04 * width + 0.5 * width * depth
        road = below & (offset < half_width)
        dashes = np.sin(14.0 / (depth + 0.08) + 0.6 * t) > 0.2
        marking = road & (offset < 0.5 + 0.012 * width * depth) & dashes
        shade = np.roll(texture, t % height, axis=0)
        grass = np.stack([70 + 12 * shade, 120 + 18 * shade, 50 + 8 * shade], -1)
        tarmac = np.repeat((105 + 6 * shade)[..., None], 3, -1)
        image = np.where(road[..., None], tarmac, grass)
        image = np.where(marking[..., None], 230.0, image)
        image = np.where(below[..., None], image, np.broadcast_to(sky, image.shape))
        image = image + rng.normal(0.0, 2.0, image.shape[:2])[..., None]
        frames[t] = np.clip(image, 0, 255)
    return frames


def indexed_frame(index: int, episode: int = 0, shape: tuple[int, int, int] = (6, 8, 3)) -> np.ndarray:
    """A frame that says which it is, for alignment tests: pixel (0, 0) holds (index % 256, index // 256,
    episode); every other pixel is pseudo-random from (index, episode).

    Returns:
        `shape` uint8; `frame_indices` recovers `index` from a stack of these.
    """
    image = np.random.default_rng([index, episode]).integers(0, 256, shape, dtype=np.uint8)
    image[0, 0] = (index % 256, (index // 256) % 256, episode % 256)
    return image


def frame_indices(frames: np.ndarray) -> np.ndarray:
    """The indices written by `indexed_frame` into a stack (n, H, W, 3): (n,) int64."""
    return frames[:, 0, 0, 0].astype(np.int64) + 256 * frames[:, 0, 0, 1].astype(np.int64)


def telemetry_rows(
    num_frames: int,
    *,
    control_period_s: float = SYNTHETIC_CONTROL_PERIOD_S,
    speed_mps: float = SYNTHETIC_SPEED_MPS,
    seed: int = 0,
    first_frame: int = 0,
) -> list[dict[str, Any]]:
    """Kinematically consistent base telemetry rows (a car weaving along a winding road).

    Returns:
        num_frames dicts holding exactly the base columns of `recordings.schema.TELEMETRY_COLUMNS`.
    """
    rng = np.random.default_rng(seed)
    x_m, y_m, yaw_rad, progress_m = 0.0, 0.0, 0.0, 0.0
    rows = []
    for i in range(num_frames):
        t_s = (first_frame + i) * control_period_s
        expert = 0.05 * np.sin(2 * np.pi * t_s / 12.0 + seed) + 0.01 * np.sin(2 * np.pi * t_s / 3.1)
        executed = expert + rng.normal(0.0, 0.004)
        offset = 0.3 * np.sin(2 * np.pi * t_s / 5.0)
        rows.append(
            {
                "frame": first_frame + i,
                "timestamp_s": t_s,
                "speed_mps": speed_mps,
                "curvature_1pm": float(executed),
                "expert_curvature_1pm": float(expert),
                "lateral_offset_m": float(offset),
                "heading_error_rad": float(0.3 * 2 * np.pi / 5.0 * np.cos(2 * np.pi * t_s / 5.0) / speed_mps),
                "progress_m": progress_m,
                "x_m": x_m,
                "y_m": y_m,
                "yaw_rad": float(yaw_rad),
                "on_road": bool(abs(offset) < 1.5),
                "intervention": False,
                "noise_variance": 0.0,
            }
        )
        step_m = speed_mps * control_period_s
        x_m += step_m * np.cos(yaw_rad)
        y_m += step_m * np.sin(yaw_rad)
        yaw_rad += executed * step_m
        progress_m += step_m
    return rows


def write_synthetic_episode(
    path: str | Path,
    num_frames: int,
    *,
    image_shape: tuple[int, int, int] = (78, 200, 3),
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    seed: int = 0,
    track: str = "synthetic",
    condition: str = "clear",
    overwrite: bool = False,
) -> Path:
    """Record a complete synthetic episode at `path` and return `path`."""
    height, width, _ = image_shape
    frames = camera_like_frames(num_frames, height, width, seed)
    meta = {
        "simulator": "synthetic",
        "track": track,
        "condition": condition,
        "seed": seed,
        "control_period_s": SYNTHETIC_CONTROL_PERIOD_S,
        "config": {"synthetic": True},
    }
    with RecordingWriter(
        path, image_shape=image_shape, meta=meta, chunk_frames=chunk_frames, overwrite=overwrite
    ) as writer:
        for image, row in zip(frames, telemetry_rows(num_frames, seed=seed)):
            writer.append(image, row)
    return Path(path)
