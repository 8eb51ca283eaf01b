"""Closed-loop throughput: control steps per second of simulator + policy + recording, with and without
saliency, in one process (torch single-threaded, as each evaluation worker runs) and as the evaluation's
pool of worker processes, for the torch engine and the onnx engine (`drive eval --engine`).

Stages in one process, each the previous plus one thing:
    sim          embedded simulator (render, physics) + safety driver, expert driving
    +policy      the policy drives (`PolicyRunner`, untrained weights: speed does not depend on them)
    +record      the drive is written as a recording (frames, telemetry, hidden state)
    +saliency    VisualBackProp per frame, recorded too
    +grad_cam    instead Captum's Grad-CAM per frame (one forward + backward), recorded too
    +integrated_gradients   instead Captum's integrated gradients (16 path points per frame), recorded too
    onnx +policy / onnx +saliency: the same policy exported (fp32 diagnostics graph, without its
                 feature-map outputs when saliency is off) driving through `OnboardPolicy`
                 (`OnnxRunner`), without and with saliency, no recording
The saliency stages print their ratio to +record (the same loop without saliency, same run). And
`pool`: `drive eval`'s worker pool (`--workers`) over several episodes, all workers' steps per
wall-clock second, for every engine of `--engines`, saliency off and on (on: every frame), all in one
run (rounds interleaved), with the onnx engines' ratio to the torch engine. Prints medians of several
rounds (the machine may be shared with other work; the median resists bursts of other load).

    python bench/loop.py                          # ncp-ltc, 300 steps, 3 rounds, pool of 2
    python bench/loop.py --policy lstm --steps 200 --rounds 5 --workers 2 --engines torch,onnx:int8
    python bench/loop.py --steps 100 --rounds 3 --workers 0 --methods visual_backprop,grad_cam
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from drive.closed_loop.drivers import ExpertDriver, PolicyRunner  # noqa: E402
from drive.closed_loop.loop import EpisodeLimits, run_episode  # noqa: E402
from drive.closed_loop.onnx_runner import OnnxRunner  # noqa: E402
from drive.eval.engine import CACHE_ENV, engine_model  # noqa: E402
from sim.embedded.simulator import EmbeddedSimConfig  # noqa: E402
from sim.perturbations import gaussian_spec  # noqa: E402
from sim.registry import make_simulator, sim_meta  # noqa: E402
from sim.safety_driver import SafetyDriverConfig  # noqa: E402

TARGET_SPEEDUP = 2.0
"""Issue 19: the onnx engine's pool ≥ 2x the torch engine's steps/s, saliency off and on."""

SALIENCY_STAGES = {
    "+saliency": "visual_backprop",
    "+grad_cam": "grad_cam",
    "+integrated_gradients": "integrated_gradients",
}
"""Stage name -> the saliency method it runs."""


def stage_rate(stage: str, checkpoint: Path, steps: int, track: str, seed: int, tmp: Path) -> float:
    """Steps per second of one episode of `steps` control steps at `stage`."""
    config = EmbeddedSimConfig(track=track)
    saliency = "visual_backprop" if stage.endswith("+saliency") else None
    driver: Any
    if stage == "sim":
        driver = ExpertDriver()
    elif stage.startswith("onnx"):
        model = engine_model(checkpoint, "fp32", feature_maps=saliency is not None, quiet=True)
        driver = OnnxRunner(model, saliency=saliency)  # as the engine drives: maps only for saliency
    else:
        driver = PolicyRunner(_policy(checkpoint), saliency=SALIENCY_STAGES.get(stage))
    recorded = stage == "+record" or stage in SALIENCY_STAGES
    record_to = tmp / f"{stage}-{seed}-{time.monotonic_ns()}" if recorded else None
    with make_simulator(
        "embedded", config, safety=SafetyDriverConfig(), perturbations=gaussian_spec(0.1)
    ) as sim:
        start = time.perf_counter()
        run_episode(
            sim,
            driver,
            seed=seed,
            limits=EpisodeLimits(max_steps=steps),
            record_to=record_to,
            meta=sim_meta("embedded", config, seed),
        )
        return (steps + 1) / (time.perf_counter() - start)


_LOADED: dict[Path, Any] = {}


def _policy(checkpoint: Path) -> Any:
    from policies.checkpoint import load_policy

    if checkpoint not in _LOADED:
        _LOADED[checkpoint] = load_policy(checkpoint)[0]
    return _LOADED[checkpoint]


def pool_rate(
    checkpoint: Path,
    engine: str,
    saliency: bool,
    steps: int,
    track: str,
    workers: int,
    episodes: int,
    tmp: Path,
) -> tuple[float, float]:
    """All workers' steps per wall-clock second over `episodes` episodes of the evaluation pool (no
    recording; saliency on every frame when on): (worker start-up included, steady state). The steady
    state is from the episodes' own times, leaving out each worker's first episode, which also pays the
    process's one-time set-up (track, scenery, sessions: ~0.1 s). The onnx engine's export is made
    before (cached), as a rerun finds it."""
    from drive.eval.evaluate import run_episodes
    from drive.eval.plan import EvalConfig

    config = EvalConfig(
        policies=[str(checkpoint)],
        noise=[0.1],
        seeds=list(range(episodes)),
        laps=None,
        max_steps=steps,
        track=track,
        workers=workers,
        saliency=saliency,
        saliency_frames=steps + 1,
        engine=engine,
    )
    start = time.perf_counter()
    outcomes = run_episodes(config, tmp / f"pool-{time.monotonic_ns()}", progress=False)
    wall_s = time.perf_counter() - start
    frames = sum(o.metrics["frames"] for o in outcomes)
    warm = [o for o in outcomes if o.process_episode > 0] or outcomes
    steady = workers * sum(o.metrics["frames"] for o in warm) / sum(o.wall_s for o in warm)
    return frames / wall_s, steady


def print_pool(
    rates: dict[tuple[str, bool], list[tuple[float, float]]], engines: list[str], workers: int
) -> None:
    """The pool table (medians over rounds) and each onnx engine's ratio to the torch engine."""
    med = {
        key: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v))
        for key, v in rates.items()
    }
    print(f"  pool of {workers} workers, steps/s of all workers, steady (with worker start-up):")
    print(f"    {'engine':<11} {'saliency off':>22} {'saliency on':>22}")
    for engine in engines:
        cells = [f"{med[(engine, s)][1]:8.0f} ({med[(engine, s)][0]:5.0f})" for s in (False, True)]
        print(f"    {engine:<11} {cells[0]:>22} {cells[1]:>22}")
    if "torch" not in engines:
        return
    for engine in (e for e in engines if e != "torch"):
        ratios = [med[(engine, s)][1] / med[("torch", s)][1] for s in (False, True)]
        with_start = [med[(engine, s)][0] / med[("torch", s)][0] for s in (False, True)]
        verdict = "meets" if min(ratios) >= TARGET_SPEEDUP else "below"
        print(
            f"    {engine} / torch: {ratios[0]:.2f}x saliency off, {ratios[1]:.2f}x saliency on, steady "
            f"({with_start[0]:.2f}x / {with_start[1]:.2f}x with start-up): {verdict} the "
            f"{TARGET_SPEEDUP:g}x target"
        )


def print_stages(rounds: dict[str, list[float]], saliency_stages: tuple[str, ...]) -> None:
    """Each stage's median steps/s, the policy's cost per step, and each saliency method's ratio."""
    rates = {stage: statistics.median(r) for stage, r in rounds.items()}
    for stage in rounds:
        print(
            f"  {stage:<15} median {rates[stage]:6.0f} steps/s  ({1e3 / rates[stage]:.2f} ms/step, "
            f"max {max(rounds[stage]):.0f})"
        )
    ms = {stage: 1e3 / rate for stage, rate in rates.items()}
    print(
        f"  per step: torch policy ≈ {ms['+policy'] - ms['sim']:.2f} ms, onnx policy ≈ "
        f"{ms['onnx +policy'] - ms['sim']:.2f} ms; VisualBackProp ≈ "
        f"{ms['onnx +saliency'] - ms['onnx +policy']:.2f} ms onnx"
    )
    for stage in saliency_stages:
        print(
            f"  {SALIENCY_STAGES[stage]:<22} {rates[stage]:6.1f} steps/s, "
            f"{rates[stage] / rates['+record']:.3f}x of +record, "
            f"≈ {ms[stage] - ms['+record']:.1f} ms extra per step (torch)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="ncp-ltc", help="registry name (ncp-ltc)")
    parser.add_argument("--steps", type=int, default=300, help="control steps per episode (300 = 15 s)")
    parser.add_argument("--rounds", type=int, default=3, help="episodes per stage; the median is printed")
    parser.add_argument("--track", default="forest")
    parser.add_argument("--workers", type=int, default=2, help="pool size for the pool figures (0: skip)")
    parser.add_argument(
        "--engines", default="torch,onnx:fp32,onnx:int8", help="engines of the pool figures, comma-separated"
    )
    parser.add_argument(
        "--pool-rounds", type=int, default=1, help="pool runs per engine and saliency setting"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads in this process (1, like a worker)"
    )
    parser.add_argument(
        "--methods",
        default="visual_backprop,grad_cam,integrated_gradients",
        help="saliency methods to time, comma-separated",
    )
    args = parser.parse_args()
    # Imported here, not at the top: the pool's spawned workers import this module as their __main__,
    # and a worker of the onnx engine must start as one of `drive eval` does, without torch.
    import torch

    torch.set_num_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    print(
        f"closed loop, {args.policy}, {args.steps} steps x {args.rounds} rounds, track {args.track}, "
        f"torch threads {args.threads}, {os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f})"
    )
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        os.environ[CACHE_ENV] = str(tmp / "engines")  # the exports stay in this run (workers inherit it)
        from policies.checkpoint import save_checkpoint
        from policies.registry import build_policy

        torch.manual_seed(0)
        checkpoint = save_checkpoint(tmp / f"{args.policy}.pt", build_policy(args.policy))
        engines = [e.strip() for e in args.engines.split(",") if e.strip()]
        for engine in engines:  # exported once here (as `drive eval` does before its workers start)
            if engine != "torch":
                engine_model(checkpoint, engine.partition(":")[2] or "fp32", quiet=True)
        stage_rate("+policy", checkpoint, 20, args.track, 99, tmp)  # warm-up: imports, first allocations
        stage_rate("onnx +policy", checkpoint, 20, args.track, 99, tmp)
        saliency_stages = tuple(s for s, m in SALIENCY_STAGES.items() if m in methods)
        stages = ("sim", "+policy", "+record", *saliency_stages, "onnx +policy", "onnx +saliency")
        rounds: dict[str, list[float]] = {stage: [] for stage in stages}
        for seed in range(args.rounds):  # stages interleaved, so a burst of other load hits them alike
            for stage in stages:
                rounds[stage].append(stage_rate(stage, checkpoint, args.steps, args.track, seed, tmp))
        print_stages(rounds, saliency_stages)
        if args.workers > 0:
            episodes = 2 * args.workers
            pool: dict[tuple[str, bool], list[tuple[float, float]]] = {}
            for _ in range(args.pool_rounds):  # interleaved, as the stages
                for saliency in (False, True):
                    for engine in engines:
                        pool.setdefault((engine, saliency), []).append(
                            pool_rate(
                                checkpoint,
                                engine,
                                saliency,
                                args.steps,
                                args.track,
                                args.workers,
                                episodes,
                                tmp,
                            )
                        )
            print(
                f"  ({episodes} episodes of {args.steps} steps per pool run, {args.pool_rounds} run(s) each)"
            )
            print_pool(pool, engines, args.workers)


if __name__ == "__main__":
    main()
