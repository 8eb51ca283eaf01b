"""Scaling of a micro study over executors: wall time with the local executor at 1 and 2 workers and with a
private Ray at 2 CPUs, in one run, as ratios against local-1.

Usage: python bench/cluster.py [--policies ncp-ltc,lstm] [--seeds 0,1] [--minutes 0.2]

The study (one held_out protocol: recordings made once beforehand and shared, so only the jobs are timed;
policies × seeds trainings of one short epoch, each model evaluated on 2 noise levels × 1 seed of 100
steps) runs once per executor into its own output folder. Ray must give the same episode table as the
local run with the same torch threads per job (checked): Ray's 1-CPU jobs and local-2's workers train
with 1 thread, local-1 with 2, and thread counts change float rounding. Ray's figure includes starting and
stopping the private Ray (what a user of `--executor ray` without a cluster pays); its start-up alone is
timed too. Ray runs its workers at the driver's priority (RAY_worker_niceness=0): with Ray's default (15)
its jobs starve beside other work.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_worker_niceness", "0")


def study_dict(data: str, policies: list[str], seeds: list[int], out: str, executor: dict) -> dict:
    return {
        "name": "bench-cluster",
        "out": out,
        "protocols": [{"name": "held_out", "kind": "held_out", "track": "forest", "data": data}],
        "train": {
            "config": str(ROOT / "launch" / "train_default.yaml"),
            "policies": policies,
            "seeds": seeds,
            "overrides": ["epochs=1", "batch=4", "data.window=8", "data.stride=8", "log_interval=5"],
        },
        "eval": {"noise": [0.0, 0.2], "seeds": [0], "laps": None, "max_steps": 100},
        "workers": executor.pop("workers", 1),
        "executor": executor,
    }


def run(study: dict) -> tuple[float, object]:
    """Wall seconds of one study run, and its episode table."""
    import pandas as pd

    from common.strict_config import from_dict
    from drive.study.runner import run_study
    from drive.study.study_plan import StudyConfig

    config = from_dict(StudyConfig, study)
    started = time.perf_counter()
    outcome, _ = run_study(config, progress=False)
    wall_s = time.perf_counter() - started
    if not outcome.ok:
        raise SystemExit(f"study failed: {outcome.failures} {outcome.blocked}")
    table = pd.read_parquet(Path(config.out) / "episodes.parquet")
    return wall_s, table


def ray_startup_s() -> float:
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    ray.shutdown()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", default="ncp-ltc,lstm")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--minutes", type=float, default=0.2, help="minutes of each of the 2 recorded drives")
    args = parser.parse_args()
    policies = args.policies.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]

    from drive.closed_loop.record import RecordConfig, record

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "record"
        record(RecordConfig(tracks=["oval"], episodes=2, minutes=args.minutes), data, progress=False)
        runs = {
            "local, 1 worker": {"kind": "local", "workers": 1},
            "local, 2 workers": {"kind": "local", "workers": 2},
            "ray, 2 CPUs": {"kind": "ray", "num_cpus": 2},
        }
        walls, tables = {}, {}
        for i, (name, executor) in enumerate(runs.items()):
            out = str(Path(tmp) / f"out-{i}")
            walls[name], tables[name] = run(study_dict(str(data), policies, seeds, out, dict(executor)))
            print(f"{name:<18} {walls[name]:7.1f} s", flush=True)
        startup = ray_startup_s()
    same_as_local_2 = tables["ray, 2 CPUs"].equals(tables["local, 2 workers"])
    jobs = 2 * len(policies) * len(seeds)
    print(f"\nmicro study: {jobs} jobs ({len(policies)} policies × {len(seeds)} seeds, train + eval)")
    base = walls["local, 1 worker"]
    for name, wall in walls.items():
        print(f"  {name:<18} {wall:7.1f} s   {base / wall:5.2f}x vs local-1")
    print(f"  ray start + stop alone {startup:5.1f} s (inside the ray figure)")
    print(f"  ray's episode table identical to local-2's (1 torch thread per job in both): {same_as_local_2}")


if __name__ == "__main__":
    main()
