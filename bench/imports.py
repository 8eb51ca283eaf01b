"""Import throughput: frames/s of `drive recordings import` per format, on this machine.

Run: `python bench/imports.py [--frames 200] [--height 480 --width 640]` (about a minute on one core).
Each source holds the same 10 s drive of 640x480 road-like frames at 20 Hz (steering at 50 Hz, ROS
bags raw rgb8 and JPEG CompressedImage, a Donkeycar tub of JPEGs, an MPEG-4 video + CSV), written with
the test makers (`tests/importers/makers.py`). Timed: the whole import (read, decode, align, crop and
resize to 78x200, write episodes). Baseline in the same run: resizing the same frames and writing
them with RecordingWriter directly, i.e. what any import must pay; the ratio says what reading the
format adds. Prints the median of --repeats runs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.strict_config import load_config  # noqa: E402
from drive.importers import import_source  # noqa: E402
from drive.importers.config import ImportConfig  # noqa: E402
from recordings import RecordingWriter  # noqa: E402
from recordings.synthetic import camera_like_frames, telemetry_rows  # noqa: E402
from tests.importers.makers import write_bag, write_csv, write_tub, write_video  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    small = camera_like_frames(args.frames)
    frames = np.stack(
        [cv2.resize(f, (args.width, args.height), interpolation=cv2.INTER_LINEAR) for f in small]
    )
    image_of = frames.__getitem__
    times = 0.05 * np.arange(args.frames)
    steer_t = 0.02 * np.arange(int(args.frames * 2.5))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sources = {
            "rosbag2 (Image rgb8)": (
                "rosbag2",
                write_bag(root / "raw.mcap", times + 50, steer_t + 50, np.sin, image_of=image_of),
            ),
            "rosbag2 (CompressedImage jpeg)": (
                "rosbag2",
                write_bag(
                    root / "jpg.mcap", times + 50, steer_t + 50, np.sin, compressed=True, image_of=image_of
                ),
            ),
            "donkeycar (tub of jpeg)": (
                "donkeycar",
                write_tub(root / "tub", [int(1000 * t) for t in times], np.sin(times), image_of=image_of),
            ),
            "video (mpeg4 + csv)": ("video", write_video(root / "v.mp4", args.frames, 20, image_of=image_of)),
        }
        write_csv(root / "v.csv", ["timestamp_s", "steering"], [[t, 0.1 * np.sin(t)] for t in steer_t])
        settings = [
            "vehicle.wheelbase_m=2.5",
            "vehicle.max_steer_rad=0.5",
            "label.kind=auto",
            "camera.crop_top_frac=0.3",
        ]
        baseline = _median(args.repeats, lambda: _baseline(frames, root / "base"))
        print(f"{args.frames} frames of {args.height}x{args.width} -> 78x200, median of {args.repeats}")
        print(f"{'baseline: resize + RecordingWriter':34s} {args.frames / baseline:8.0f} frames/s")
        for name, (fmt, path) in sources.items():
            extra = ["label.kind=road_wheel_angle"] if fmt == "video" else []
            config = load_config(ImportConfig, None, settings + extra)
            out = root / "out"
            seconds = _median(args.repeats, partial(_import_once, fmt, path, out, config))
            rate = args.frames / seconds
            print(f"{name:34s} {rate:8.0f} frames/s  ({rate * baseline / args.frames:.2f} x baseline)")


def _import_once(fmt: str, path: Path, out: Path, config: ImportConfig) -> None:
    shutil.rmtree(out, ignore_errors=True)
    import_source(fmt, path, out, config)


def _baseline(frames: np.ndarray, out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    meta = {"simulator": "bench", "track": "bench", "control_period_s": 0.05}
    with RecordingWriter(out, image_shape=(78, 200, 3), meta=meta) as writer:
        top = int(0.3 * frames.shape[1])
        for frame, row in zip(frames, telemetry_rows(len(frames))):
            writer.append(cv2.resize(frame[top:], (200, 78), interpolation=cv2.INTER_AREA), row)


def _median(repeats: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    main()
