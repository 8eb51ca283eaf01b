"""Recording format speed at the paper's 78x200 input: write MB/s, window reads, dataset windows/s.

    python bench/recordings.py                  # this tree, about 15 s on one core
    python bench/recordings.py --against REV    # this tree vs git revision REV, alternating rounds

Frames are synthetic road scenes (`recordings.synthetic.camera_like_frames`), not noise or zeros, so
compression behaves realistically. Prints medians over repeats; the dataset target is >= 5,000 frames/s for
16-frame windows on one core. `--against` measures REV's `recordings` package with this same benchmark
code (a `git archive` of REV in a temporary folder), alternating the two trees round by round so that
other load on a shared machine hits both alike, and prints each figure's ratio this/REV.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHAPE = (78, 200, 3)
FRAMES_PER_EPISODE = 512
EPISODES = 4
WINDOW, STRIDE = 16, 8
REPEATS = 5
TARGET_FRAMES_PER_S = 5_000
META = {"simulator": "synthetic", "track": "bench", "control_period_s": 0.05}
FIGURES = {
    "write_mb_per_s": "write MB/s",
    "window_frames_per_s": "Recording.frames, 16-frame window, frames/s",
    "dataset_cold_frames_per_s": "dataset cold (no cache), frames/s",
    "dataset_warm_frames_per_s": "dataset warm cache, frames/s",
}
"""Every figure is a rate: higher is faster."""


def _median_time(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(code_root: Path) -> dict[str, float]:
    """The figures of `FIGURES`, measured with the `recordings` package found under `code_root`."""
    sys.path.insert(0, str(code_root))
    import torch

    from recordings import Recording, RecordingWriter
    from recordings.dataset import WindowDataset
    from recordings.synthetic import camera_like_frames, telemetry_rows

    torch.set_num_threads(1)

    def write(path: Path, frames: np.ndarray, rows: list[dict]) -> None:
        with RecordingWriter(path, image_shape=SHAPE, meta=META, overwrite=True) as writer:
            for image, row in zip(frames, rows):
                writer.append(image, row)

    figures: dict[str, float] = {}
    frames = camera_like_frames(FRAMES_PER_EPISODE, SHAPE[0], SHAPE[1], seed=0)
    rows = telemetry_rows(FRAMES_PER_EPISODE)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seconds = _median_time(lambda: write(root / "write", frames, rows))
        figures["write_mb_per_s"] = frames.nbytes / 1e6 / seconds
        episodes = []
        for e in range(EPISODES):
            path = root / f"episode-{e:04d}"
            write(path, camera_like_frames(FRAMES_PER_EPISODE, SHAPE[0], SHAPE[1], seed=e), rows)
            episodes.append(path)
        rec = Recording(episodes[0])
        starts = np.random.default_rng(0).integers(0, FRAMES_PER_EPISODE - WINDOW, 50)
        seconds = _median_time(lambda: [rec.frames(int(s), int(s) + WINDOW) for s in starts]) / len(starts)
        figures["window_frames_per_s"] = WINDOW / seconds
        for name, cache_bytes in (("dataset_cold_frames_per_s", 0), ("dataset_warm_frames_per_s", 1 << 30)):
            ds = WindowDataset(episodes, window=WINDOW, stride=STRIDE, cache_bytes=cache_bytes)
            order = np.random.default_rng(1).permutation(len(ds)).tolist()
            if cache_bytes:
                for i in order:  # the first epoch fills the cache
                    ds[i]
            seconds = _median_time(lambda ds=ds, order=order: [ds[i] for i in order], repeats=3)
            figures[name] = WINDOW * len(order) / seconds
    return figures


def _print(figures: dict[str, float]) -> None:
    for key, label in FIGURES.items():
        verdict = ""
        if key.startswith("dataset"):
            ok = figures[key] >= TARGET_FRAMES_PER_S
            verdict = f"  (target {TARGET_FRAMES_PER_S:,}: {'ok' if ok else 'below'})"
        print(f"{label:46s} {figures[key]:10,.1f}{verdict}")


def _in_subprocess(code_root: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--json", "--code-root", str(code_root)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def compare(rev: str, rounds: int) -> None:
    """This tree vs `rev`, `rounds` alternating subprocess runs of each; medians and ratios this/rev."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        runs: dict[str, list[dict[str, float]]] = {"this": [], rev: []}
        for r in range(rounds):
            for name, root in (("this", REPO), (rev, Path(tmp))):
                runs[name].append(_in_subprocess(root))
            print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    print(f"{'median of ' + str(rounds) + ' rounds':46s} {'this':>10s} {rev[:10]:>10s} {'ratio':>7s}")
    for key, label in FIGURES.items():
        this = statistics.median(run[key] for run in runs["this"])
        base = statistics.median(run[key] for run in runs[rev])
        print(f"{label:46s} {this:10,.1f} {base:10,.1f} {this / base:7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds with --against")
    parser.add_argument("--code-root", type=Path, default=REPO, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.against:
        compare(args.against, args.rounds)
        return
    figures = measure(args.code_root)
    if args.json:
        print(json.dumps(figures))
    else:
        _print(figures)


if __name__ == "__main__":
    main()
