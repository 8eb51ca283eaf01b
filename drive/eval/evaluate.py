"""`drive eval`: the closed-loop evaluation matrix, run in parallel worker processes, then the report.

    policies (checkpoints, or the expert) × conditions × noise σ² × seeds, on one held-out track
        ─ run_episodes ─► [EpisodeOutcome …]  (a spawned process pool, or this process; same results)
        ─ report.analyse / write_report ─► metrics.json, report.md
        ─ plots.write_plots ─► plots/*.png;  videos/*.mp4 were written by the episodes themselves

Episodes are independent pure functions of (config, spec) and run single-threaded, so a pool of N
workers returns exactly what the serial loop returns, in plan order. A tqdm bar counts control steps
over the whole matrix (its total is estimated from the lap length and corrected as episodes finish).
On CARLA every pool worker holds one server of `sim.servers` (`server_pool`). With the `ray` executor
the episodes are Ray tasks on a cluster (on CARLA each reserves a node's `carla` resource and drives on
that node's server), retried when they fail.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import queue as queue_module
import sys
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.interrupts import check
from drive.eval.episode import EpisodeOutcome, preload_episode_modules, run_job
from drive.eval.plan import EXPERT, EpisodeSpec, EvalConfig, eval_track, plan_episodes, policy_labels
from drive.eval.server_pool import claim_server, on_server, run_on_held_server, servers_of

if TYPE_CHECKING:
    from drive.executor.config import ExecutorConfig

_QUEUE: Any = None  # a worker's progress queue (set by `_init_worker`)

ESTIMATED_STEPS_PER_S = 200.0
"""Rough closed-loop steps per second of one worker: the cluster's progress bar counts estimated seconds."""


def describe_policies(config: EvalConfig) -> list[dict[str, Any]]:
    """Label, registry name, training step and trained-on tracks of every policy; reads (and so
    validates) every checkpoint before any episode runs.

    The tracks come from the meta.json of the training episodes a checkpoint lists (when they are still
    on disk); a policy that trained on the evaluation track is flagged, since the protocol wants a track
    it never saw.
    """
    from policies.checkpoint import read_checkpoint

    rows: list[dict[str, Any]] = []
    for policy in config.policies:
        if policy == EXPERT:
            rows.append({"policy": policy, "name": EXPERT, "step": None, "trained_tracks": None})
            continue
        payload = read_checkpoint(policy)
        episodes = ((payload.get("extra") or {}).get("data") or {}).get("train_episodes")
        rows.append(
            {
                "policy": policy,
                "name": str(payload["policy_config"]["name"]),
                "step": int(payload["step"]),
                "trained_tracks": _episode_tracks(episodes) if episodes else None,
            }
        )
    for row, label in zip(rows, policy_labels(config.policies, [r["name"] for r in rows])):
        row["label"] = label
        row["trained_on_eval_track"] = bool(row["trained_tracks"] and config.track in row["trained_tracks"])
    return rows


def resolve_labels(config: EvalConfig) -> list[str]:
    """Table labels of `config.policies` (see `describe_policies`)."""
    return [row["label"] for row in describe_policies(config)]


def _episode_tracks(episodes: list[str]) -> list[str] | None:
    """Sorted track names of the recorded episodes still on disk, None if none can be read."""
    import json

    from recordings.layout import META_FILE

    tracks = set()
    for episode in episodes:
        try:
            tracks.add(str(json.loads((Path(episode) / META_FILE).read_text())["track"]))
        except (OSError, ValueError, KeyError):
            continue
    return sorted(tracks) or None


def run_episodes(
    config: EvalConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    specs: list[EpisodeSpec] | None = None,
    executor: ExecutorConfig | None = None,
) -> list[EpisodeOutcome]:
    """Run every episode of the matrix; outcomes in plan order.

    Args:
        config: the evaluation.
        out_dir: output folder (videos and recordings go under it).
        progress: show a tqdm bar over control steps.
        specs: run these instead of the whole plan.
        executor: who runs the episodes; None or kind "local": this machine (`config.workers`).
    """
    from drive.eval.engine import parse_engine, prepare_engine
    from sim.registry import make_simulator  # noqa: F401  (fail here if the simulator cannot import)

    if specs is None:
        specs = plan_episodes(config, resolve_labels(config))
    # Export once here, before the workers start, so no two processes export the same checkpoint.
    engine = parse_engine(config.engine)
    prepare_engine(
        engine, sorted({s.policy for s in specs}), feature_maps=config.saliency, quiet=not progress
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    track = eval_track(config)
    estimate = _estimated_frames(config, track.length_m if track is not None else None)
    if executor is not None and executor.kind == "ray":
        return _run_ray(config, specs, out, executor, estimate, progress)
    bar = _Progress(len(specs), estimate, progress)
    try:
        if config.workers <= 1 or len(specs) == 1:
            outcomes = []
            pool = servers_of(config)
            serial = on_server(config, pool[0] if pool else None)  # CARLA: the pool's first server
            for spec in specs:
                outcomes.append(run_job(serial, spec, out, functools.partial(bar.steps, spec.index)))
                bar.finished(outcomes[-1])
        else:
            outcomes = _run_pool(config, specs, out, bar)
    finally:
        bar.close()
    return sorted(outcomes, key=lambda o: o.spec.index)


def evaluate(
    config: EvalConfig, out_dir: str | Path, *, progress: bool = True, executor: ExecutorConfig | None = None
) -> dict[str, Any]:
    """Run the matrix and write the report folder: eval.yaml, metrics.json, report.md, plots/, videos/.
    `executor`: who runs the episodes (`run_episodes`); the report is the same either way.

    Returns:
        The content of metrics.json.
    """
    from common.strict_config import save_config
    from drive.eval.engine import describe_engine, parse_engine, prepare_engine
    from drive.eval.plots import write_plots
    from drive.eval.report import analyse, write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "eval.yaml")
    policies = describe_policies(config)
    for row in policies:
        if row["trained_on_eval_track"]:
            print(
                f"warning: {row['label']} trained on the evaluation track {config.track!r}", file=sys.stderr
            )
    specs = plan_episodes(config, [row["label"] for row in policies])
    outcomes = run_episodes(config, out, progress=progress, specs=specs, executor=executor)
    analysis = analyse(config, outcomes)
    analysis["policies"] = policies
    engine = parse_engine(config.engine)
    models = prepare_engine(engine, config.policies, feature_maps=config.saliency, quiet=True)
    analysis["engine"] = describe_engine(engine, models)
    figures = write_plots(config, outcomes, analysis, out / "plots")
    # metrics.json says the run is complete: a Ctrl-C swallowed since the last episode (the pool's
    # teardown, a finalizer while plotting) must stop the run before it is written.
    check()
    return write_report(config, outcomes, analysis, out, figures=[str(f.relative_to(out)) for f in figures])


def _run_pool(
    config: EvalConfig, specs: list[EpisodeSpec], out: Path, bar: _Progress
) -> list[EpisodeOutcome]:
    from common.process_pool import WorkerPool

    context = mp.get_context("spawn")
    messages = context.Queue()
    workers = min(config.workers, len(specs))
    servers = None
    if servers_of(config):  # CARLA: each worker claims one server when it starts and keeps it
        servers = context.Queue()
        for server in servers_of(config)[:workers]:
            servers.put(server)
    outcomes: list[EpisodeOutcome] = []
    # On Ctrl-C (or a failed episode) the pool stops the running episodes: recordings close as aborted.
    init_args = (messages, config.engine, servers)
    with WorkerPool(workers, _init_worker, init_args) as pool:
        futures = {
            pool.submit(run_on_held_server, config, spec, out, _queue_sink(spec.index)): spec
            for spec in specs
        }
        pending = set(futures)
        while pending:
            check()  # a Ctrl-C swallowed where it landed (common/interrupts.py)
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(messages, bar)
            for future in done:
                spec = futures[future]
                try:
                    outcome = future.result()
                except Exception as err:
                    kind = ValueError if isinstance(err, ValueError) else RuntimeError
                    raise kind(f"episode {spec.episode_id} failed: {err}") from err
                outcomes.append(outcome)
                bar.finished(outcome)
    return outcomes


def _init_worker(messages: Any, engine: str, servers: Any = None) -> None:
    """A worker's start: the progress queue, its CARLA server (`sim.servers`: one per worker), torch on 1
    thread (torch engine only: ~1 s of start-up), and the modules every episode runs on (~0.2 s), so
    that the episodes' own times are the work of the episodes."""
    global _QUEUE
    _QUEUE = messages
    claim_server(servers)
    if engine == "torch":
        import torch

        torch.set_num_threads(1)
    import cv2

    cv2.setNumThreads(1)  # one core per worker: OpenCV's pool would only contend with the other workers
    preload_episode_modules(engine)


def _run_ray(
    config: EvalConfig,
    specs: list[EpisodeSpec],
    out: Path,
    executor: ExecutorConfig,
    frames_each: int,
    progress: bool,
) -> list[EpisodeOutcome]:
    """The episodes as tasks on a Ray cluster (one CPU each; on CARLA also one `carla` resource: the
    node's own server at `sim.host:sim.port`); a failed episode is retried, then the evaluation fails
    naming every episode that did not finish."""
    from drive.executor.config import make_executor
    from drive.executor.tasks import Resources, Task

    if config.sim.backend == "carla" and config.sim.config.servers:
        raise ValueError(
            "sim.servers is the local pool's list; with the ray executor each episode drives on the server "
            "of the node it runs on (sim.host:sim.port), which declares it with `ray start --resources "
            "'{\"carla\": 1}'`"
        )
    carla = {"carla": 1.0} if config.sim.backend == "carla" else {}
    resources = Resources(cpus=executor.cpus_per_job, custom=carla)
    cost_s = frames_each / ESTIMATED_STEPS_PER_S
    tasks = [
        Task(s.episode_id, run_job, (config, s, str(out)), (), cost_s, resources, *_shipped(config, s, out))
        for s in specs
    ]
    outcome = make_executor(executor, workers=1, progress=progress, desc="eval").run(tasks)
    if outcome.failures:
        failed = "; ".join(f"{key}: {error}" for key, error in outcome.failures.items())
        raise RuntimeError(f"{len(outcome.failures)} episode(s) failed on the cluster: {failed}")
    by_key = outcome.results
    return sorted((by_key[spec.episode_id] for spec in specs), key=lambda o: o.spec.index)


class _QueueSink:
    """Picklable progress callback: in a worker it puts (episode index, steps) on the shared queue."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, steps: int) -> None:
        if _QUEUE is not None:
            _QUEUE.put((self.index, steps))


def _queue_sink(index: int) -> _QueueSink:
    return _QueueSink(index)


def _drain(messages: Any, bar: _Progress) -> None:
    while True:
        try:
            index, steps = messages.get_nowait()
        except queue_module.Empty:
            return
        bar.steps(index, steps)


def _shipped(config: EvalConfig, spec: EpisodeSpec, out: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What an episode reads (its checkpoint) and writes (its video, its recording), for a cluster without
    a shared file system (`executor.artifacts: ship`)."""
    inputs = () if spec.policy == EXPERT else (str(Path(spec.policy).resolve()),)
    outputs = [str(out / "videos" / f"{spec.episode_id}.mp4")] if spec.video else []
    outputs += [str(out / "episodes" / spec.episode_id)] if config.record else []
    return inputs, tuple(outputs)


def _estimated_frames(config: EvalConfig, track_length_m: float | None) -> int:
    """Frames one episode will probably have (for the progress bar's total); `track_length_m` None: not
    known before the episode (a CARLA town)."""
    candidates = []
    if config.max_steps is not None:
        candidates.append(config.max_steps + 1)
    if config.laps is not None and track_length_m is not None:
        speed = max(config.target_speed_mps, 0.5)
        candidates.append(int(config.laps * track_length_m / speed / config.control_period_s) + 1)
    cap = config.episode_time_cap_s(track_length_m)
    if cap is not None:
        candidates.append(int(cap / config.control_period_s) + 1)
    return min(candidates)


class _Progress:
    """A tqdm bar over control steps of the whole matrix; exact once every episode has finished."""

    def __init__(self, episodes: int, frames_each: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.estimate = frames_each
        self.counted: dict[int, int] = {}
        self.done: set[int] = set()
        self.episodes = episodes
        self.bar = tqdm(
            total=episodes * frames_each,
            unit="step",
            disable=not enabled,
            dynamic_ncols=True,
            desc="eval",
            mininterval=0.1 if sys.stderr.isatty() else 10.0,  # a log file gets a line every 10 s
        )

    def steps(self, index: int, steps: int) -> None:
        if index in self.done:  # a late message: the episode was already settled exactly
            return
        self.counted[index] = self.counted.get(index, 0) + steps
        self.bar.update(steps)

    def finished(self, outcome: EpisodeOutcome) -> None:
        index, frames = outcome.spec.index, int(outcome.metrics["frames"])
        self.done.add(index)
        self.bar.total += frames - self.estimate
        self.bar.update(frames - self.counted.pop(index, 0))
        self.bar.set_postfix_str(f"{len(self.done)}/{self.episodes} episodes", refresh=False)

    def close(self) -> None:
        self.bar.close()
