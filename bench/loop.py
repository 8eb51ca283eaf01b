"""Closed-loop throughput: control steps per second of simulator + policy + recording, with and without
saliency, in one process (torch single-threaded, as each evaluation worker runs) and as the evaluation's
pool of worker processes.

Stages, each the previous plus one thing:
    sim          embedded simulator (render, physics) + safety driver, expert driving
    +policy      the policy drives (`PolicyRunner`, untrained weights: speed does not depend on them)
    +record      the drive is written as a recording (frames, telemetry, hidden state)
    +saliency    VisualBackProp per frame, recorded too
    +grad_cam    instead Captum's Grad-CAM per frame (one forward + backward), recorded too
    +integrated_gradients   instead Captum's integrated gradients (16 path points per frame), recorded too
The saliency stages print their ratio to +record (the same loop without saliency, same run). And
`pool`: `drive eval`'s worker pool (`--workers`) over several episodes, steps of all workers per
wall-clock second. Prints the median of several rounds (the machine may be shared with other work; the
median resists bursts of other load).

    python bench/loop.py                          # ncp-ltc, 400 steps, 3 rounds, pool of 2
    python bench/loop.py --policy lstm --steps 200 --rounds 5 --workers 2
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from drive.closed_loop.drivers import ExpertDriver, PolicyRunner  # noqa: E402
from drive.closed_loop.loop import EpisodeLimits, run_episode  # noqa: E402
from sim.embedded.simulator import EmbeddedSimConfig  # noqa: E402
from sim.perturbations import gaussian_spec  # noqa: E402
from sim.registry import make_simulator, sim_meta  # noqa: E402
from sim.safety_driver import SafetyDriverConfig  # noqa: E402

TARGET_STEPS_PER_S = 200.0
"""The issue's target without saliency, on 2 cores."""

SALIENCY_STAGES = {
    "+saliency": "visual_backprop",
    "+grad_cam": "grad_cam",
    "+integrated_gradients": "integrated_gradients",
}
"""Stage name -> the saliency method it runs."""


def stage_rate(stage: str, policy_name: str, steps: int, track: str, seed: int, tmp: Path) -> float:
    """Steps per second of one episode of `steps` control steps at `stage`."""
    from policies.registry import build_policy

    config = EmbeddedSimConfig(track=track)
    if stage == "sim":
        driver = ExpertDriver()
    else:
        torch.manual_seed(0)
        driver = PolicyRunner(build_policy(policy_name), saliency=SALIENCY_STAGES.get(stage))
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


def pool_rate(
    policy_name: str, steps: int, track: str, workers: int, episodes: int, tmp: Path
) -> tuple[float, float]:
    """All workers' steps per wall-clock second over `episodes` episodes of the evaluation pool (no
    saliency, no recording): (worker start-up included, steady state from the episodes' own times)."""
    from drive.eval.evaluate import run_episodes
    from drive.eval.plan import EvalConfig
    from policies.checkpoint import save_checkpoint
    from policies.registry import build_policy

    ckpt = save_checkpoint(tmp / f"{policy_name}.pt", build_policy(policy_name))
    config = EvalConfig(
        policies=[str(ckpt)],
        noise=[0.1],
        seeds=list(range(episodes)),
        laps=None,
        max_steps=steps,
        track=track,
        workers=workers,
    )
    start = time.perf_counter()
    outcomes = run_episodes(config, tmp / f"pool-{time.monotonic_ns()}", progress=False)
    wall_s = time.perf_counter() - start
    frames = sum(o.metrics["frames"] for o in outcomes)
    return frames / wall_s, workers * frames / sum(o.wall_s for o in outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="ncp-ltc", help="registry name (ncp-ltc)")
    parser.add_argument("--steps", type=int, default=400, help="control steps per episode (400 = 20 s)")
    parser.add_argument("--rounds", type=int, default=3, help="episodes per stage; the median is printed")
    parser.add_argument("--track", default="forest")
    parser.add_argument("--workers", type=int, default=2, help="pool size for the pool figure (0: skip)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads in this process (1, like a worker)"
    )
    parser.add_argument(
        "--methods",
        default="visual_backprop,grad_cam,integrated_gradients",
        help="saliency methods to time, comma-separated",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    print(
        f"closed loop, {args.policy}, {args.steps} steps x {args.rounds} rounds, track {args.track}, "
        f"torch threads {args.threads}, {os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f})"
    )
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        stage_rate("+policy", args.policy, 20, args.track, 99, tmp)  # warm-up: imports, first allocations
        stages = ("sim", "+policy", "+record") + tuple(s for s, m in SALIENCY_STAGES.items() if m in methods)
        rounds: dict[str, list[float]] = {stage: [] for stage in stages}
        for seed in range(args.rounds):  # stages interleaved, so a burst of other load hits them alike
            for stage in stages:
                rounds[stage].append(stage_rate(stage, args.policy, args.steps, args.track, seed, tmp))
        rates = {stage: statistics.median(r) for stage, r in rounds.items()}
        for stage in stages:
            print(
                f"  {stage:<10} median {rates[stage]:6.0f} steps/s  ({1e3 / rates[stage]:.2f} ms/step, "
                f"max {max(rounds[stage]):.0f})"
            )
        policy_ms = 1e3 / rates["+policy"] - 1e3 / rates["sim"]
        print(f"  policy step ≈ {policy_ms:.2f} ms")
        for stage in stages[3:]:
            extra_ms = 1e3 / rates[stage] - 1e3 / rates["+record"]
            print(
                f"  {SALIENCY_STAGES[stage]:<22} {rates[stage]:6.1f} steps/s, "
                f"{rates[stage] / rates['+record']:.3f}x of +record, ≈ {extra_ms:.1f} ms extra per step"
            )
        if args.workers > 0:
            episodes = 2 * args.workers
            rate, steady = pool_rate(args.policy, args.steps, args.track, args.workers, episodes, tmp)
            verdict = "meets" if steady >= TARGET_STEPS_PER_S else "below"
            print(
                f"  pool of {args.workers} workers, {episodes} episodes: {steady:.0f} steps/s steady, "
                f"{rate:.0f} steps/s with worker start-up "
                f"({verdict} the {TARGET_STEPS_PER_S:.0f} steps/s target)"
            )


if __name__ == "__main__":
    main()
