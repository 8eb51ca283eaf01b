"""Camera renderer throughput: renders per second per condition on one core.

Drives a pose along a stadium-shaped track (two 150 m straights, 40 m bends, dashed markings, trees)
with a gentle weave, and times `Renderer.render` per condition and resolution. Prints the median of
several rounds of CPU time (process time: on a shared machine, waiting for a core is not counted)
and the best round.

    python bench/render.py                     # 78x200 and 160x320, all conditions
    python bench/render.py --sizes 78x200 --frames 500 --rounds 7
    python bench/render.py --grid grid.png     # also save one frame per condition (2x), two poses
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from sim.conditions import CONDITIONS  # noqa: E402
from sim.embedded.camera import CameraConfig, Renderer  # noqa: E402
from sim.tracks.track import Track  # noqa: E402
from sim.types import Pose  # noqa: E402


def stadium_track(radius_m: float = 40.0, straight_m: float = 150.0, spacing_m: float = 1.0) -> Track:
    """A closed stadium: two straights joined by half circles, driven counter-clockwise."""
    n_s, n_c = int(straight_m / spacing_m), int(np.pi * radius_m / spacing_m)
    s = np.arange(n_s) * spacing_m - straight_m / 2
    a = np.pi * np.arange(n_c) / n_c
    pts = np.concatenate(
        [
            np.stack([s, np.full(n_s, -radius_m)], 1),
            np.stack([straight_m / 2 + radius_m * np.sin(a), -radius_m * np.cos(a)], 1),
            np.stack([-s, np.full(n_s, radius_m)], 1),
            np.stack([-straight_m / 2 - radius_m * np.sin(a), radius_m * np.cos(a)], 1),
        ]
    )
    return Track.from_centreline("stadium", pts, marking="dashed", scenery_seed=3)


def drive_poses(track: Track, n: int) -> list[Pose]:
    """Poses along the track, 0.25 m apart, weaving ±0.4 m and ±0.05 rad about the centre line."""
    i = np.arange(n)
    k = (i * 0.25 / track.length_m * len(track.s_m)).astype(int) % len(track.s_m)
    xy, yaw = track.centre_xy_m[k], track.heading_rad[k]
    off = 0.4 * np.sin(i / 15.0)
    return [
        Pose(float(x - o * np.sin(h)), float(y + o * np.cos(h)), float(h + 0.05 * np.sin(j / 9.0)))
        for j, (x, y, h, o) in enumerate(zip(xy[:, 0], xy[:, 1], yaw, off))
    ]


def save_grid(path: str, track: Track) -> None:
    """One 78x200 frame per condition (columns) from two poses (rows), upscaled 2x, labelled."""
    poses = [Pose(-60.0, -40.0, 0.0), Pose(30.0, -40.3, 0.05), Pose(92.0, -28.0, 0.75)]
    rows = []
    for pose in poses:
        tiles = []
        for condition in CONDITIONS:
            frame = Renderer(track, CameraConfig(), condition, seed=1).render(pose)
            tile = cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
            if pose is poses[0]:
                label = np.full((18, tile.shape[1], 3), 255, np.uint8)
                font = cv2.FONT_HERSHEY_SIMPLEX
                cv2.putText(label, condition, (4, 13), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
                tile = np.concatenate([label, tile])
            tiles += [tile, np.full((tile.shape[0], 4, 3), 255, np.uint8)]
        row = np.concatenate(tiles[:-1], axis=1)
        rows += [row, np.full((4, row.shape[1], 3), 255, np.uint8)]
    cv2.imwrite(path, cv2.cvtColor(np.concatenate(rows[:-1]), cv2.COLOR_RGB2BGR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="78x200,160x320", help="comma-separated HxW")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--grid", help="save a PNG of one frame per condition here")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    track = stadium_track()
    if args.grid:
        save_grid(args.grid, track)
    poses = drive_poses(track, args.frames)
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.split("x"))
        for condition in CONDITIONS:
            renderer = Renderer(track, CameraConfig(width=w, height=h), condition, seed=1)
            for p in poses[:20]:
                renderer.render(p)
            rates = []
            for _ in range(args.rounds):
                t0 = time.process_time()
                for p in poses:
                    renderer.render(p)
                rates.append(len(poses) / (time.process_time() - t0))
            median, best = statistics.median(rates), max(rates)
            print(f"{h}x{w} {condition:7s} median {median:6.0f} renders/s  best {best:6.0f}")


if __name__ == "__main__":
    main()
