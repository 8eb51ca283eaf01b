"""Recording format speed at the paper's 78x200 input: write MB/s, window reads, dataset windows/s.

Run: `python bench/recordings.py` (about 15 s on one core). Frames are synthetic road scenes
(`recordings.synthetic.camera_like_frames`), not noise or zeros, so compression behaves realistically.
Prints medians over repeats; the dataset target is >= 5,000 frames/s for 16-frame windows on one core.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recordings import Recording, RecordingWriter  # noqa: E402
from recordings.dataset import WindowDataset  # noqa: E402
from recordings.synthetic import camera_like_frames, telemetry_rows  # noqa: E402

SHAPE = (78, 200, 3)
FRAMES_PER_EPISODE = 512
EPISODES = 4
WINDOW, STRIDE = 16, 8
REPEATS = 5
TARGET_FRAMES_PER_S = 5_000
META = {"simulator": "synthetic", "track": "bench", "control_period_s": 0.05}


def _median_time(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _write(path: Path, frames: np.ndarray, rows: list[dict]) -> None:
    with RecordingWriter(path, image_shape=SHAPE, meta=META, overwrite=True) as writer:
        for image, row in zip(frames, rows):
            writer.append(image, row)


def _disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    torch.set_num_threads(1)
    frames = camera_like_frames(FRAMES_PER_EPISODE, SHAPE[0], SHAPE[1], seed=0)
    rows = telemetry_rows(FRAMES_PER_EPISODE)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seconds = _median_time(lambda: _write(root / "write", frames, rows))
        raw_mb = frames.nbytes / 1e6
        ratio = frames.nbytes / _disk_bytes(root / "write" / "frames.zarr")
        print(
            f"write      {raw_mb / seconds:8.1f} MB/s  ({FRAMES_PER_EPISODE / seconds:,.0f} frames/s, "
            f"frames compress {ratio:.2f}x, median of {REPEATS})"
        )

        episodes = []
        for e in range(EPISODES):
            path = root / f"episode-{e:04d}"
            _write(path, camera_like_frames(FRAMES_PER_EPISODE, SHAPE[0], SHAPE[1], seed=e), rows)
            episodes.append(path)

        rec = Recording(episodes[0])
        starts = np.random.default_rng(0).integers(0, FRAMES_PER_EPISODE - WINDOW, 50)
        seconds = _median_time(lambda: [rec.frames(int(s), int(s) + WINDOW) for s in starts]) / len(starts)
        print(
            f"Recording.frames (16-frame window, no cache) {seconds * 1e3:6.2f} ms  "
            f"({WINDOW / seconds:,.0f} frames/s)"
        )

        for label, cache_bytes in (("cold, no cache", 0), ("warm cache", 1 << 30)):
            ds = WindowDataset(episodes, window=WINDOW, stride=STRIDE, cache_bytes=cache_bytes)
            order = np.random.default_rng(1).permutation(len(ds)).tolist()
            if cache_bytes:
                for i in order:  # first epoch fills the cache
                    ds[i]
            seconds = _median_time(lambda ds=ds, order=order: [ds[i] for i in order], repeats=3) / len(order)
            verdict = "ok" if WINDOW / seconds >= TARGET_FRAMES_PER_S else "below"
            print(
                f"dataset {label:15s} {1 / seconds:8,.0f} windows/s  {WINDOW / seconds:9,.0f} frames/s  "
                f"(target {TARGET_FRAMES_PER_S:,} frames/s: {verdict}; random order, {len(ds)} windows)"
            )


if __name__ == "__main__":
    main()
