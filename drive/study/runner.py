"""`drive study FILE.yaml`: record (if asked) → train every policy × seed → evaluate every model → report.

Skip-done and resumable like `drive launch`: recordings already complete are kept, finished trainings and
evaluations (a DONE file with the same config digest) are skipped, an interrupted training resumes from
its last checkpoint, and the report is rebuilt from the files every time. Before anything runs it checks
every protocol's recordings against its kind and prints the plan with an estimate of its duration.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drive.executor.config import make_executor
from drive.executor.tasks import Outcome, Resources, Task, format_duration
from drive.study.jobs import eval_config, eval_dir, protocol_data, run_job, train_config, train_dir
from drive.study.study_plan import EvalJob, StudyConfig, TrainJob, eval_backend, plan_jobs

TRAIN_FRAMES_PER_S = {"ncp-ltc": 170.0, "ncp-cfc": 190.0, "lstm": 190.0, "ctrnn": 190.0, "cnn": 110.0}
"""Rough training throughput per worker (one thread, 78×200, batch 8) on the project's 2-core x86 machine,
frames/s, for the plan's time estimate only."""
EVAL_STEPS_PER_S = 200.0
"""Rough closed-loop steps per second per worker (saliency on the first 200 frames), for the estimate."""


def load_study(path: str | Path, overrides: Sequence[str] = ()) -> StudyConfig:
    """A study file with `--set` overrides, its relative paths resolved against the file's folder
    (`--set out=...` given on the command line: against the working directory)."""
    from common.strict_config import load_config
    from drive.study.study_plan import resolve_paths

    path = Path(path)
    cli_out = next((o.partition("=")[2] for o in overrides if o.startswith("out=")), None)
    config = resolve_paths(load_config(StudyConfig, path, list(overrides)), path.resolve().parent)
    if cli_out is not None:
        import dataclasses

        config = dataclasses.replace(config, out=str(Path(cli_out).resolve()))
    return config


def run_study(config: StudyConfig, *, progress: bool = True) -> tuple[Outcome, dict[str, Any]]:
    """Run the whole study; returns the executor's outcome and the report's summary (study.json).

    Raises:
        ValueError: a protocol whose recordings contradict its kind, or a stale finished job.
        ImportError: `executor.kind: ray` without Ray installed (before anything ran).
    """
    from common.strict_config import save_config
    from drive.study.study_report import write_study_report

    executor = make_executor(config.executor, config.workers, progress=progress)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "study.yaml")
    started = time.perf_counter()
    for protocol in config.protocols:
        prepare_protocol(config, protocol.name, progress=progress)
    tasks = plan_tasks(config)
    print(describe_plan(config, tasks), flush=True)
    outcome = executor.run(tasks)
    summary = write_study_report(config, outcome, wall_s=time.perf_counter() - started)
    return outcome, summary


def prepare_protocol(config: StudyConfig, name: str, progress: bool = True) -> None:
    """Record the protocol's drives when the study makes them, then check the recordings' tracks against
    the protocol's kind (held_out: the evaluation track is not among them; in_distribution: it is)."""
    from drive.closed_loop.record import record
    from recordings.catalog import summarize

    protocol = config.protocol(name)
    data = protocol_data(config, name)
    if protocol.record is not None:
        record(protocol.record, data, progress=progress, redo_incomplete=True)
    if not data.is_dir():
        raise FileNotFoundError(f"protocol {name!r}: recordings folder {data} does not exist")
    tracks = set(summarize(data).tracks)
    if not tracks:
        raise ValueError(f"protocol {name!r}: no readable episodes in {data}")
    if protocol.kind == "held_out" and protocol.track in tracks:
        raise ValueError(
            f"protocol {name!r} is held_out, but its recordings ({data}) drove the evaluation track "
            f"{protocol.track!r}; use kind in_distribution or another track"
        )
    if protocol.kind == "in_distribution" and protocol.track not in tracks:
        raise ValueError(
            f"protocol {name!r} is in_distribution, but its recordings ({data}) never drove the evaluation "
            f"track {protocol.track!r} (they drove {sorted(tracks)})"
        )


def plan_tasks(config: StudyConfig) -> list[Task]:
    """The executor's tasks: every job of `plan_jobs` with its dependency and estimated cost."""
    frames = _frames_by_protocol(config)
    cpus = config.executor.cpus_per_job
    train = Resources(cpus=cpus, gpus=config.executor.train_gpus)
    tasks = []
    for job in plan_jobs(config):
        data, trained = str(protocol_data(config, job.protocol)), str(train_dir(config, job))
        if isinstance(job, TrainJob):
            cost_s = _train_cost_s(config, job, frames)
            tasks.append(Task(job.key, run_job, (config, job), (), cost_s, train, (data,), (trained,)))
        else:
            cost_s = _eval_cost_s(config, job)
            resources, report = _eval_resources(config), str(eval_dir(config, job))
            # The recordings too: the report reads the tracks a model trained on from their meta.json.
            shipped = ((data, trained), (report,))
            tasks.append(Task(job.key, run_job, (config, job), (job.needs,), cost_s, resources, *shipped))
    return tasks


def _eval_resources(config: StudyConfig) -> Resources:
    """An eval job's CPUs, and on CARLA one `carla` server (a node resource: `ray start --resources
    '{"carla": 1}'` on each machine that runs a server)."""
    carla = {"carla": 1.0} if eval_backend(config.eval) == "carla" else {}
    return Resources(cpus=config.executor.cpus_per_job, custom=carla)


def describe_plan(config: StudyConfig, tasks: list[Task]) -> str:
    """The plan in a few lines, with its estimated duration (local: on `config.workers` workers)."""
    trains = sum(1 for t in tasks if t.key.startswith("train/"))
    evals = len(tasks) - trains
    total_s = sum(t.cost_s for t in tasks)
    protocols = ", ".join(f"{p.name} ({p.kind}, evaluated on {p.track})" for p in config.protocols)
    if config.executor.kind == "local":
        estimate = f"{format_duration(total_s / config.workers)} on {config.workers} worker(s)"
    else:
        estimate = f"{format_duration(total_s)} of job time, shared among the Ray cluster's CPUs"
    return (
        f"study {config.name!r}: {trains} trainings ({len(config.train.policies)} policies × "
        f"{len(config.train.seeds)} seeds × {len(config.protocols)} protocols: {protocols}) and {evals} "
        f"evaluations; estimated {estimate} if nothing is done yet (finished jobs are skipped)"
    )


def _frames_by_protocol(config: StudyConfig) -> dict[str, int]:
    from recordings.catalog import summarize

    return {p.name: summarize(protocol_data(config, p.name)).frames for p in config.protocols}


def _train_cost_s(config: StudyConfig, job: TrainJob, frames: dict[str, int]) -> float:
    cfg = train_config(config, job)
    train_frames = frames[job.protocol] * (1.0 - cfg.data.val_fraction)
    rate = TRAIN_FRAMES_PER_S.get(job.policy, 170.0)
    return float(cfg.epochs * train_frames / rate)


def _eval_cost_s(config: StudyConfig, job: EvalJob) -> float:
    from drive.eval.plan import eval_track

    cfg = eval_config(config, job)
    episodes = len(cfg.noise) * len(cfg.conditions) * len(cfg.seeds)
    track = eval_track(cfg)
    steps: float
    if cfg.max_steps is not None:
        steps = cfg.max_steps
    elif cfg.laps is not None and track is not None:
        steps = cfg.laps * track.length_m / max(cfg.target_speed_mps, 0.5) / cfg.control_period_s
    else:
        steps = (cfg.max_time_s or 120.0) / cfg.control_period_s
    return float(episodes * steps / EVAL_STEPS_PER_S)


def outcome_summary(outcome: Outcome) -> dict[str, Any]:
    """Failures and blocked jobs, JSON-able."""
    summary: dict[str, Any] = json.loads(
        json.dumps({"failures": outcome.failures, "blocked": outcome.blocked})
    )
    return summary
