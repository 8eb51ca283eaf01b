"""Does bf16 training learn as well as float32? Validation ratios of short trainings over seeds.

    .venv/bin/python bench/train_seeds.py --data RECORDINGS [--seeds 0,1,2] [--epochs 1] [--threads 1]

For each seed, ncp-ltc is trained twice on the same recordings with `launch/train_default.yaml`: once in
float32 (`amp_bf16: false`) and once with the perception under bfloat16 autocast (`amp_bf16: true`), the
two runs of a seed back to back so the machine's load hits them alike. Everything else (init, window
order, augmentation, schedule) is the seed's. Printed per seed: the best and last validation ratio
(validation loss / the zero predictor's, `metrics.jsonl`'s `val_ratio`, always computed in float32),
and each run's training frames/s; then the means, the seed-to-seed standard deviation of each precision
and the paired bf16 - fp32 differences.

The verdict `match` needs the mean paired difference of the best ratio to lie within the float32 runs'
own seed-to-seed spread (one standard deviation): bf16 then changes the result less than the seed does.
`bench/train.py --seeds-data DIR` runs this after its speed figures.
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

BASE_CONFIG = ROOT / "launch" / "train_default.yaml"
PRECISIONS = {"fp32": False, "bf16": True}


def train_once(data: Path, out: Path, seed: int, bf16: bool, epochs: int, threads: int) -> dict:
    """One short training; returns its best and last val_ratio, frames/s and wall seconds."""
    from drive.training.run import resolve_config, run_training

    overrides = [
        f"seed={seed}",
        f"amp_bf16={'true' if bf16 else 'false'}",
        f"epochs={epochs}",
        f"threads={threads}",
        "progress=false",
        "device=cpu",
        "checkpoint_interval=100000",
    ]
    config = resolve_config(BASE_CONFIG, data, overrides)
    start = time.perf_counter()
    summary = run_training(config, out)
    wall_s = time.perf_counter() - start
    ratios = [
        json.loads(line)["val_ratio"]
        for line in (out / "metrics.jsonl").read_text().splitlines()
        if '"val_ratio"' in line
    ]
    return {
        "best_val_ratio": min(ratios),
        "last_val_ratio": ratios[-1],
        "val_ratios": ratios,
        "frames_per_s": summary["frames_per_s"],
        "wall_s": wall_s,
    }


def compare_seeds(data: Path, seeds: list[int], epochs: int, threads: int) -> dict:
    """Both precisions for every seed (back to back); per-run results and the summary statistics."""
    runs: dict[str, list[dict]] = {name: [] for name in PRECISIONS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for name, bf16 in PRECISIONS.items():
                result = train_once(data, Path(tmp) / f"{name}-{seed}", seed, bf16, epochs, threads)
                runs[name].append({"seed": seed, **result})
                print(
                    f"  seed {seed} {name}: best val_ratio {result['best_val_ratio']:.4f}, last "
                    f"{result['last_val_ratio']:.4f}, {result['frames_per_s']:.0f} frames/s, "
                    f"{result['wall_s']:.0f} s",
                    flush=True,
                )
    return summarise(runs, epochs)


def summarise(runs: dict[str, list[dict]], epochs: int) -> dict:
    """Means, seed-to-seed sd, paired differences and the verdict (module docstring)."""
    best = {name: [r["best_val_ratio"] for r in rows] for name, rows in runs.items()}
    paired = [b - f for b, f in zip(best["bf16"], best["fp32"])]
    spread = statistics.stdev(best["fp32"]) if len(best["fp32"]) > 1 else float("nan")
    mean_diff = statistics.mean(paired)
    speed = {name: statistics.median(r["frames_per_s"] for r in rows) for name, rows in runs.items()}
    return {
        "epochs": epochs,
        "runs": runs,
        "mean_best": {name: statistics.mean(v) for name, v in best.items()},
        "sd_best": {name: statistics.stdev(v) if len(v) > 1 else float("nan") for name, v in best.items()},
        "paired_best_diff": paired,
        "mean_paired_diff": mean_diff,
        "fp32_seed_sd": spread,
        "match": abs(mean_diff) <= spread,
        "median_frames_per_s": speed,
    }


def print_summary(result: dict) -> None:
    mean, sd = result["mean_best"], result["sd_best"]
    seeds = [r["seed"] for r in result["runs"]["fp32"]]
    print(f"validation ratio over seeds {seeds} ({result['epochs']} epochs each, best val_ratio):")
    for name in PRECISIONS:
        values = " / ".join(f"{r['best_val_ratio']:.4f}" for r in result["runs"][name])
        print(
            f"  {name}: {values}  mean {mean[name]:.4f} sd {sd[name]:.4f}  "
            f"(median {result['median_frames_per_s'][name]:.0f} frames/s in the whole fit)"
        )
    diffs = " / ".join(f"{d:+.4f}" for d in result["paired_best_diff"])
    verdict = "within" if result["match"] else "OUTSIDE"
    print(
        f"  paired bf16 - fp32: {diffs}, mean {result['mean_paired_diff']:+.4f}: {verdict} the fp32 "
        f"seed-to-seed sd {result['fp32_seed_sd']:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="recordings to train on (episodes folder)")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds (at least 3 for the verdict)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per training (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per training")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    result = compare_seeds(Path(args.data), seeds, args.epochs, args.threads)
    print_summary(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
