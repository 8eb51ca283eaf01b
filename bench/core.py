"""Recurrent-head speed, ours vs the reference library ncps, on the driving wiring (32 inputs, 19 neurons).

Usage: python bench/core.py [--quick] [--threads 1] [--repeats 15]

For LTC-NCP and CfC-NCP, in the same run and interleaved (so machine load hits both alike):
- training step: forward over the sequence + MSE loss + backward + Adam step, B=16, T=32, 32 inputs;
- single-step inference: one step at B=1 without gradients (ours: `step`; ncps: its cell's forward).
Each figure is the median over `--repeats` rounds of the per-call time of a block of calls. ncps's
wiring is its own NCP(12, 6, 1, 6, 4, 6, 6) (same sizes and fan-outs, its own random draw).
The last line is machine-readable:
    ltc_train_speedup_vs_ncps=X cfc_train_speedup_vs_ncps=Y ltc_step_speedup_vs_ncps=Z
Targets (the LTC issue): LTC training step ≥ 5× faster than ncps, single-step inference ≥ 3×.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from policies.ncp_wiring import driving_ncp  # noqa: E402

BATCH, STEPS, INPUTS = 16, 32, 32


def _ncps_wiring():
    from ncps.wirings import NCP

    return NCP(12, 6, 1, 6, 4, 6, 6)


def build(kind: str) -> tuple[nn.Module, nn.Module]:
    """(ours, ncps) heads of one kind, `ltc` or `cfc`, on the driving NCP wiring."""
    import ncps.torch

    if kind == "ltc":
        from policies.ltc import LTC

        return LTC(INPUTS, driving_ncp(input_dim=INPUTS)), ncps.torch.LTC(INPUTS, _ncps_wiring())
    from policies.cfc import CfC

    return CfC(INPUTS, driving_ncp(input_dim=INPUTS)), ncps.torch.CfC(INPUTS, _ncps_wiring())


def train_step_fn(module: nn.Module, ours: bool) -> Callable[[], None]:
    """One Adam step on an MSE loss over a (16, 32, 32) batch."""
    x = torch.randn(BATCH, STEPS, INPUTS)
    target = torch.randn(BATCH, STEPS, 1)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    run = module.forward_sequence if ours else module

    def step() -> None:
        optimizer.zero_grad()
        y, _ = run(x)
        loss = torch.nn.functional.mse_loss(y, target)
        loss.backward()
        optimizer.step()

    return step


def infer_step_fn(module: nn.Module, ours: bool) -> Callable[[], None]:
    """One no-grad step at batch 1 (ours: the head protocol's `step`; ncps: the cell's forward)."""
    x = torch.randn(1, INPUTS)
    state = torch.zeros(1, module.state_size)
    if ours:

        def step() -> None:
            with torch.no_grad():
                module.step(x, state)

    else:
        cell = module.rnn_cell  # LTCCell(x, h, elapsed_time) / WiredCfCCell(x, h, timespans)

        def step() -> None:
            with torch.no_grad():
                cell(x, state, 1.0)

    return step


def compare(
    ours: Callable[[], None], theirs: Callable[[], None], calls: int, repeats: int
) -> tuple[float, float]:
    """Median seconds per call of each, measured in alternating blocks of `calls` calls."""
    for fn in (ours, theirs):  # warm-up: TorchScript profiling runs, allocator caches
        for _ in range(max(3, calls // 2)):
            fn()
    times: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(repeats):
        for index, fn in enumerate((ours, theirs)):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[index].append((time.perf_counter() - start) / calls)
    return statistics.median(times[0]), statistics.median(times[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: few repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=15, help="rounds per figure (median over them)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    repeats = 3 if args.quick else args.repeats
    train_calls, infer_calls = (2, 50) if args.quick else (5, 300)

    print(
        f"torch {torch.__version__}, {args.threads} thread(s); train: B={BATCH} T={STEPS} F={INPUTS}, "
        f"infer: B=1; medians over {repeats} rounds"
    )
    print(f"{'head':10s} {'measure':16s} {'ours':>10s} {'ncps':>10s} {'speed-up':>9s}")
    speedups: dict[str, float] = {}
    for kind in ("ltc", "cfc"):
        ours, theirs = build(kind)
        for measure, make, calls, unit, scale in (
            ("train step", train_step_fn, train_calls, "ms", 1e3),
            ("inference step", infer_step_fn, infer_calls, "µs", 1e6),
        ):
            mine, ref = compare(make(ours, True), make(theirs, False), calls, repeats)
            speedups[f"{kind}_{measure.split()[0]}"] = ref / mine
            name = kind.upper() + "-NCP"
            times = f"{mine * scale:8.1f}{unit} {ref * scale:8.1f}{unit}"
            print(f"{name:10s} {measure:16s} {times} {ref / mine:8.2f}×")
    print(
        f"ltc_train_speedup_vs_ncps={speedups['ltc_train']:.2f} "
        f"cfc_train_speedup_vs_ncps={speedups['cfc_train']:.2f} "
        f"ltc_step_speedup_vs_ncps={speedups['ltc_inference']:.2f}"
    )


if __name__ == "__main__":
    main()
