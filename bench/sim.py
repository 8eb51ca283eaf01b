"""Embedded-simulator speed on one core: control steps per second, with and without rendering.

Usage: python bench/sim.py [--steps 400] [--repeats 5] [--track country]

Each measurement drives the expert for `--steps` control steps after a warm-up and reports the median
over `--repeats` runs: physics + geometry + expert alone (render=False), then the full step with the
camera at 78×200 (the NCP input size) and 160×320 for every condition. Target: ≥ 1,000 steps/s at
78×200 including rendering.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402

from sim.conditions import CONDITIONS  # noqa: E402
from sim.embedded.camera import CameraConfig  # noqa: E402
from sim.embedded.simulator import EmbeddedSimConfig, EmbeddedSimulator  # noqa: E402
from sim.types import Command  # noqa: E402

RESOLUTIONS = ((78, 200), (160, 320))


def steps_per_s(config: EmbeddedSimConfig, steps: int, repeats: int) -> float:
    """Median control steps per second of the expert driving `steps` steps, over `repeats` runs."""
    rates = []
    with EmbeddedSimulator(config) as sim:
        _, info = sim.reset(seed=0)
        for _ in range(20):  # warm-up: caches, first-touch allocations
            _, info = sim.step(Command(info["expert_curvature_1pm"]))
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(steps):
                _, info = sim.step(Command(info["expert_curvature_1pm"]))
            rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--track", default="country")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)

    base = EmbeddedSimConfig(track=args.track, render=False)
    physics = steps_per_s(base, args.steps * 5, args.repeats)
    print(f"track {args.track}, {args.steps} steps × {args.repeats} repeats, medians, one core")
    print(f"physics + geometry + expert (no rendering): {physics:,.0f} steps/s = {1e6 / physics:.0f} µs/step")
    print()
    header = f"{'condition':<10}" + "".join(f"{f'{h}x{w} steps/s':>20}" for h, w in RESOLUTIONS)
    print(header)
    print("-" * len(header))
    for condition in CONDITIONS:
        row = f"{condition:<10}"
        for h, w in RESOLUTIONS:
            cfg = EmbeddedSimConfig(
                track=args.track, condition=condition, camera=CameraConfig(width=w, height=h), render=True
            )
            rate = steps_per_s(cfg, args.steps, args.repeats)
            row += f"{rate:>14,.0f} ({1e3 / rate:.2f} ms)"
        print(row)


if __name__ == "__main__":
    main()
