"""Training throughput per registry policy vs the data pipeline's, and ncp-ltc before/after the speed-ups.

    .venv/bin/python bench/train.py [--steps 3] [--threads 2] [--policies ncp-ltc,cnn] [--workers 0]
                                    [--rounds 8] [--overlap-steps 8]

Training: `Trainer.step` (forward over B·T frames, backward, clipping, Adam) at 78x200, B=16, T=16, on
batches already in memory; the median step time gives frames/s. Data: synthetic recorded episodes on
disk (recordings.synthetic) through the real loader (WindowDataset -> augmentation -> DataLoader), cold
(first decode of every chunk) and warm (decoded-chunk cache hit), in frames/s. Training is not
input-bound while the warm data rate exceeds the training rate (and with workers > 0 the loading
overlaps the step).

Before/after (ncp-ltc, 78x200, B=16, T=16): "before" is the trainer as it was (float32, plain Adam),
"after" the current defaults. Each candidate speed-up is also timed alone on top of "before":
bfloat16 autocast of the perception (`amp_bf16: auto` in launch/train_default.yaml since issue 19, see
drive/training/precision.py), a fused Adam, channels-last conv weights. Where "after"
equals "before" or a candidate in configuration, the two rows differ by the noise of the measurement
only. All variants take one step each per round, round after round, so
load from other jobs hits them alike; the median over rounds gives frames/s. Loading overlap: the whole
`Trainer.fit` on recorded episodes with the loading in the training process (workers=0) vs one
DataLoader worker, alternated, second (warm-cache) epoch timed.

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

from common.strict_config import load_config  # noqa: E402
from drive.training.data import AugmentedWindows, load_recordings, train_loader  # noqa: E402
from drive.training.distributed import DistContext  # noqa: E402
from drive.training.schedule import lr_factor  # noqa: E402
from drive.training.train_config import TrainConfig  # noqa: E402
from drive.training.trainer import Trainer  # noqa: E402
from policies.registry import policy_names  # noqa: E402

BATCH, WINDOW, STRIDE, HEIGHT, WIDTH = 16, 16, 8, 78, 200


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


def make_trainer(name: str, device: str, overrides: dict | None = None) -> Trainer:
    """A trainer of registry policy `name` at B=16, T=16 on in-memory random windows (the given config
    overrides on top of the defaults)."""
    base = {
        "policy": {"name": name},
        "batch": BATCH,
        "data": {"window": WINDOW},
        "device": device,
        "threads": torch.get_num_threads(),  # the trainer sets torch's threads: keep --threads
    }
    config = load_config(TrainConfig, {**base, **(overrides or {})})
    return Trainer(
        config, AugmentedWindows(RandomWindows(BATCH)), ctx=DistContext(device=torch.device(device))
    )


def one_batch(trainer: Trainer) -> tuple[torch.Tensor, torch.Tensor]:
    frames, labels = zip(*(trainer.train_set[(0, i)] for i in range(BATCH)))
    return torch.stack(frames), torch.stack(labels)


def timed_step(trainer: Trainer, frames: torch.Tensor, labels: torch.Tensor) -> float:
    """Seconds of one `Trainer.step` (synchronised on CUDA)."""
    cuda = trainer.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    trainer.step(frames, labels)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def bench_policy(name: str, steps: int, device: str) -> dict:
    """Median training frames/s of one policy with the default config (after two warm-up steps)."""
    trainer = make_trainer(name, device)
    frames, labels = one_batch(trainer)
    for _ in range(2):  # warm-up: allocations, TorchScript profiling runs, cuDNN autotuning
        trainer.step(frames, labels)
    median = statistics.median(timed_step(trainer, frames, labels) for _ in range(steps))
    return {"policy": name, "step_s": median, "frames_per_s": BATCH * WINDOW / median}


def use_fused_adam(trainer: Trainer) -> None:
    """Swap the trainer's Adam for torch's fused one (same groups, hyper-parameters and schedule)."""
    optim = trainer.config.optim
    groups = trainer.policy.parameter_groups(optim.lr_head, optim.lr_perception)
    trainer.optimizer = torch.optim.Adam(
        groups, betas=optim.betas, weight_decay=optim.weight_decay, fused=True
    )
    trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(
        trainer.optimizer, lambda step: lr_factor(step, optim, trainer.total_steps)
    )


def use_channels_last(trainer: Trainer) -> None:
    """Put the perception's conv weights in channels-last memory format."""
    trainer.policy.perception.to(memory_format=torch.channels_last)


BEFORE = {"amp_bf16": False}
"""The trainer as it was before the speed-ups: float32, plain (for-loop) Adam, default weight layout."""


def default_amp_bf16() -> bool | str:
    """`amp_bf16` of launch/train_default.yaml, the ncp-ltc training default (`auto` since issue 19)."""
    return load_config(TrainConfig, str(ROOT / "launch" / "train_default.yaml")).amp_bf16


AFTER = {"amp_bf16": default_amp_bf16()}
"""The current defaults: launch/train_default.yaml's precision (bf16 where the hardware computes it)."""

CANDIDATES = (
    # (row, config overrides on top of BEFORE, in-place change of the trainer, adopted as a default)
    ("bf16 autocast", {"amp_bf16": True}, None, AFTER["amp_bf16"] is not False),  # auto in train_default
    ("fused Adam", {}, use_fused_adam, False),  # ~1 ms of a ~0.5 s step: not measurable
    ("channels-last weights", {}, use_channels_last, False),  # activations already are (NHWC input)
)


def bench_before_after(rounds: int, device: str, policy: str = "ncp-ltc") -> dict:
    """Interleaved step times of `policy` before/after the speed-ups and of each candidate alone.

    Every round takes one step of every variant (two warm-up rounds untimed), so drifting load from other
    jobs hits all of them; the median over rounds gives each variant's frames/s.
    """
    after = make_trainer(policy, device, AFTER)  # the defaults
    variants = {"before": make_trainer(policy, device, BEFORE), "after": after}
    adopted = {}
    for row, overrides, change, is_default in CANDIDATES:
        trainer = make_trainer(policy, device, {**BEFORE, **overrides})
        if change is not None:
            change(trainer)
        variants[row] = trainer
        adopted[row] = is_default
    batch = one_batch(after)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for k in range(rounds + 2):
        for name, trainer in variants.items():
            seconds = timed_step(trainer, *batch)
            if k >= 2:
                times[name].append(seconds)
    frames = BATCH * WINDOW
    rate = {name: frames / statistics.median(t) for name, t in times.items()}
    return {
        "policy": policy,
        "rounds": rounds,
        "after_amp_bf16": after.amp_bf16,
        "before_frames_per_s": rate["before"],
        "after_frames_per_s": rate["after"],
        "speedup": rate["after"] / rate["before"],
        "candidates": [
            {
                "change": row,
                "adopted": adopted[row],
                "frames_per_s": rate[row],
                "vs_before": rate[row] / rate["before"],
            }
            for row, *_ in CANDIDATES
        ],
    }


def write_episodes(root: Path, windows_per_episode: int, episodes: int = 4) -> None:
    """Synthetic recorded episodes of exactly `windows_per_episode` windows each (stride 8)."""
    from recordings.synthetic import write_synthetic_episode

    frames = WINDOW + STRIDE * (windows_per_episode - 1)
    for k in range(episodes):
        write_synthetic_episode(root / f"episode-{k}", frames, seed=k)


def bench_overlap(root: Path, device: str, reps: int = 2) -> dict:
    """Whole-`fit` frames/s of ncp-ltc (defaults) on the episodes under `root`: loading in the training
    process (workers=0) vs one DataLoader worker loading the next batch during the step, alternated
    `reps` times. Two epochs per run; the second (warm decoded-frame cache, worker running) is timed."""
    rates: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(reps):
        for workers in (0, 1):
            config = load_config(
                TrainConfig,
                {
                    "data": {"root": str(root), "window": WINDOW, "stride": STRIDE, "val_fraction": 0.0},
                    "batch": BATCH,
                    "epochs": 2,
                    "device": device,
                    "progress": False,
                    "threads": torch.get_num_threads(),
                },
                [f"data.workers={workers}"],
            )
            data = load_recordings(config.data, config.augment, config.seed)
            trainer = Trainer(config, data.train, ctx=DistContext(device=torch.device(device)))
            trainer.fit(stop_at_step=trainer.steps_per_epoch)  # first epoch: cold caches, worker start
            rates[workers].append(trainer.fit()["frames_per_s"])
            del trainer  # ends the persistent worker
    return {
        "steps_per_epoch": len(data.train) // BATCH,
        "workers0_frames_per_s": statistics.median(rates[0]),
        "workers1_frames_per_s": statistics.median(rates[1]),
    }


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


def print_before_after(compare: dict, overlap: dict | None) -> None:
    """The before/after table of ncp-ltc and what each candidate change buys alone."""
    before, after = compare["before_frames_per_s"], compare["after_frames_per_s"]
    print(
        f"{compare['policy']} training before/after (interleaved, median of {compare['rounds']} rounds; "
        f"defaults resolve amp_bf16 -> {'on' if compare['after_amp_bf16'] else 'off'} here):"
    )
    print(f"  before (float32, plain Adam)   {before:>6.0f} frames/s")
    print(f"  after  (current defaults)      {after:>6.0f} frames/s   {compare['speedup']:.2f}x")
    print("  each change alone on top of before:")
    for c in compare["candidates"]:
        kept = "default" if c["adopted"] else ("opt-in" if "bf16" in c["change"] else "not kept")
        print(f"    {c['change']:<26} {c['frames_per_s']:>6.0f} frames/s   {c['vs_before']:.2f}x  ({kept})")
    if overlap is not None:
        w0, w1 = overlap["workers0_frames_per_s"], overlap["workers1_frames_per_s"]
        print(
            f"  loading overlap (whole fit on recorded episodes, warm epoch of {overlap['steps_per_epoch']} "
            f"steps): workers=0 {w0:.0f} frames/s, workers=1 {w1:.0f} frames/s ({w1 / w0:.2f}x; "
            "launch/train_default.yaml keeps workers=0)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per policy (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--policies", default=",".join(policy_names()), help="comma-separated registry names")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for the data timing")
    parser.add_argument("--data-batches", type=int, default=12, help="batches timed per data pass")
    parser.add_argument("--rounds", type=int, default=8, help="timed rounds of the before/after comparison")
    parser.add_argument(
        "--overlap-steps", type=int, default=8, help="steps per epoch of the loading-overlap runs (0 skips)"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--seeds-data",
        default=None,
        metavar="DIR",
        help="also compare bf16 and fp32 validation ratios over seeds on these recordings (train_seeds.py)",
    )
    parser.add_argument("--seeds", default="0,1,2", help="training seeds of the --seeds-data comparison")
    parser.add_argument("--seeds-epochs", type=int, default=1, help="epochs per --seeds-data training")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from recordings.synthetic import write_synthetic_episode

    with tempfile.TemporaryDirectory() as tmp:
        frames_needed = args.data_batches * BATCH * 8 + WINDOW  # stride 8: ~one window per 8 frames
        per_episode = max(frames_needed // 4, 128)
        for k in range(4):
            write_synthetic_episode(Path(tmp) / f"episode-{k}", per_episode, seed=k)
        data = bench_data(Path(tmp), args.workers, args.data_batches)
        overlap = None
        if args.overlap_steps > 0:
            root = Path(tmp) / "overlap"
            write_episodes(root, args.overlap_steps * BATCH // 4)
            overlap = bench_overlap(root, args.device)

    results = [bench_policy(name, args.steps, args.device) for name in args.policies.split(",")]
    compare = bench_before_after(args.rounds, args.device)
    report = {
        "device": args.device,
        "threads": args.threads,
        "batch": BATCH,
        "window": WINDOW,
        "image": [HEIGHT, WIDTH],
        "data": data,
        "policies": results,
        "before_after": compare,
        "loading_overlap": overlap,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"device {args.device}, {args.threads} threads, B={BATCH}, T={WINDOW}, {HEIGHT}x{WIDTH}")
    print(
        f"data pipeline (workers={data['workers']}, augmentation on): cold {data['cold_frames_per_s']:.0f} "
        f"frames/s, warm {data['warm_frames_per_s']:.0f} frames/s"
    )
    print("per policy, default config:")
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
    print_before_after(compare, overlap)
    if args.seeds_data:
        from bench.train_seeds import compare_seeds, print_summary

        seeds = [int(seed) for seed in args.seeds.split(",")]
        print_summary(compare_seeds(Path(args.seeds_data), seeds, args.seeds_epochs, args.threads))


if __name__ == "__main__":
    main()
