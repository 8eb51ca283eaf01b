"""Training throughput per registry policy vs the data pipeline's, in one run: is training input-bound?

    .venv/bin/python bench/train.py [--steps 3] [--threads 2] [--policies ncp-ltc,cnn] [--workers 0]

Training: `Trainer.step` (forward over B·T frames, backward, clipping, Adam) at 78x200, B=16, T=16, on
batches already in memory; the median step time gives frames/s. Data: synthetic recorded episodes on
disk (recordings.synthetic) through the real loader (WindowDataset -> augmentation -> DataLoader), cold
(first decode of every chunk) and warm (decoded-chunk cache hit), in frames/s. Training is not
input-bound while the warm data rate exceeds the training rate (and with workers > 0 the loading
overlaps the step).

On a CPU shared with other jobs, intra-op threads wait on each other whenever one is descheduled: the
figures then swing by 3-4x from run to run; `--threads 1` is steadier, and the median of `--steps`
hides single slow steps only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drive.config import load_config  # noqa: E402
from drive.training.config import TrainConfig  # noqa: E402
from drive.training.data import load_recordings, train_loader  # noqa: E402
from drive.training.distributed import DistContext  # noqa: E402
from drive.training.trainer import Trainer  # noqa: E402
from policies.registry import policy_names  # noqa: E402

BATCH, WINDOW, HEIGHT, WIDTH = 16, 16, 78, 200


class RandomWindows(torch.utils.data.Dataset):
    """Random frames and labels, in memory (the training timing must not include loading)."""

    def __init__(self, windows: int) -> None:
        self.windows = windows

    def __len__(self) -> int:
        return self.windows

    def __getitem__(self, index: int) -> dict:
        g = torch.Generator().manual_seed(index)
        frames = torch.randint(0, 256, (WINDOW, HEIGHT, WIDTH, 3), generator=g, dtype=torch.uint8)
        return {"frames": frames, "labels": 0.05 * (torch.rand(WINDOW, generator=g) * 2 - 1)}


def bench_policy(name: str, steps: int, device: str) -> dict:
    """Median training frames/s of one policy (after two warm-up steps)."""
    from drive.training.data import AugmentedWindows

    config = load_config(
        TrainConfig, {"policy": {"name": name}, "batch": BATCH, "data": {"window": WINDOW}, "device": device}
    )
    trainer = Trainer(
        config, AugmentedWindows(RandomWindows(BATCH)), ctx=DistContext(device=torch.device(device))
    )
    frames, labels = zip(*(trainer.train_set[(0, i)] for i in range(BATCH)))
    frames, labels = torch.stack(frames), torch.stack(labels)
    for _ in range(2):  # warm-up: allocations, TorchScript profiling runs, cuDNN autotuning
        trainer.step(frames, labels)
    times = []
    for _ in range(steps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        trainer.step(frames, labels)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"policy": name, "step_s": median, "frames_per_s": BATCH * WINDOW / median}


def bench_data(root: Path, workers: int, batches: int) -> dict:
    """Frames/s of the real loader (with augmentation), first pass (cold) and second pass (warm cache)."""
    config = load_config(TrainConfig, {"data": {"root": str(root), "window": WINDOW, "val_fraction": 0.0}})
    data = load_recordings(config.data, config.augment, config.seed)
    loader, sampler = train_loader(data.train, BATCH, 0, 1, 0, workers)
    rates = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        count, t0 = 0, time.perf_counter()
        for k, (frames, _) in enumerate(loader):
            count += frames.shape[0] * frames.shape[1]
            if k + 1 >= batches:
                break
        rates.append(count / (time.perf_counter() - t0))
    return {"workers": workers, "cold_frames_per_s": rates[0], "warm_frames_per_s": rates[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per policy (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--policies", default=",".join(policy_names()), help="comma-separated registry names")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for the data timing")
    parser.add_argument("--data-batches", type=int, default=12, help="batches timed per data pass")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from recordings.synthetic import write_synthetic_episode

    with tempfile.TemporaryDirectory() as tmp:
        frames_needed = args.data_batches * BATCH * 8 + WINDOW  # stride 8: ~one window per 8 frames
        per_episode = max(frames_needed // 4, 128)
        for k in range(4):
            write_synthetic_episode(Path(tmp) / f"episode-{k}", per_episode, seed=k)
        data = bench_data(Path(tmp), args.workers, args.data_batches)

    results = [bench_policy(name, args.steps, args.device) for name in args.policies.split(",")]
    report = {
        "device": args.device,
        "threads": args.threads,
        "batch": BATCH,
        "window": WINDOW,
        "image": [HEIGHT, WIDTH],
        "data": data,
        "policies": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"device {args.device}, {args.threads} threads, B={BATCH}, T={WINDOW}, {HEIGHT}x{WIDTH}")
    print(
        f"data pipeline (workers={data['workers']}, augmentation on): cold {data['cold_frames_per_s']:.0f} "
        f"frames/s, warm {data['warm_frames_per_s']:.0f} frames/s"
    )
    print(f"{'policy':<12} {'step s':>8} {'train frames/s':>15} {'data/train (warm)':>18}")
    for r in results:
        ratio = data["warm_frames_per_s"] / r["frames_per_s"]
        print(f"{r['policy']:<12} {r['step_s']:>8.3f} {r['frames_per_s']:>15.0f} {ratio:>17.1f}x")
    slowest_input = min(data["warm_frames_per_s"], data["cold_frames_per_s"])
    fastest_train = max(r["frames_per_s"] for r in results)
    verdict = "not input-bound" if slowest_input > fastest_train else "INPUT-BOUND for the fastest policy"
    print(
        f"verdict: {verdict} (slowest data pass {slowest_input:.0f} vs fastest training "
        f"{fastest_train:.0f} frames/s)"
    )


if __name__ == "__main__":
    main()
