"""What every executor runs and returns: `Task` (one job, its dependencies, cost and resources) and `Outcome`
(results, failures and blocked jobs by key), plus the plan-order, retry and progress helpers the executors
share, so `local` and `ray` schedule, retry and report the same way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Resources:
    """What one job needs while it runs (the `ray` executor reserves it; the local pool runs one job per
    worker process, one torch thread each).

    Attributes:
        cpus: CPU cores (also the job's torch threads on a cluster).
        gpus: GPUs (training on a cluster node with a GPU, when asked).
        custom: named custom resources, e.g. {"carla": 1} for a node's CARLA server.
    """

    cpus: float = 1.0
    gpus: float = 0.0
    custom: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """One unit of work for an executor.

    Attributes:
        key: unique name (reports, dependencies).
        fn: a picklable top-level function, called as `fn(*args)`.
        args: its arguments (picklable).
        needs: keys of tasks that must succeed first.
        cost_s: estimated run time, s (progress and ETA only).
        resources: what it needs on a cluster.
        inputs: folders it reads (absolute), shipped to a cluster node without a shared file system.
        outputs: folders it writes (absolute), shipped back from such a node.
    """

    key: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    needs: tuple[str, ...] = ()
    cost_s: float = 1.0
    resources: Resources = field(default_factory=Resources)
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


@dataclass
class Outcome:
    """What running the tasks gave: results by key, failures by key (error text), tasks not run because a
    task they need failed, and the attempts of every task that was tried more than once."""

    results: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    blocked: dict[str, str] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.blocked


def retriable(error: BaseException) -> bool:
    """Whether a failed job is worth another attempt: not when it says its inputs are wrong (a
    `ValueError`, e.g. a stale finished job or a bad config: it would fail the same way again)."""
    return not isinstance(error, ValueError)


def error_text(error: BaseException) -> str:
    """`Kind: message` of a job's error (the report's and the exit message's wording)."""
    return f"{type(error).__name__}: {error}"


def check_graph(tasks: list[Task]) -> None:
    """Keys unique and every dependency known; ValueError otherwise."""
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("tasks: repeated keys")
    missing = sorted({n for t in tasks for n in t.needs} - set(keys))
    if missing:
        raise ValueError(f"tasks need unknown tasks {missing}")


def plan_order(tasks: list[Task]) -> list[Task]:
    """Tasks in an order where every task comes after what it needs (stable otherwise)."""
    done: set[str] = set()
    ordered: list[Task] = []
    pending = list(tasks)
    while pending:
        ready = [t for t in pending if all(n in done for n in t.needs)]
        if not ready:
            raise ValueError(f"tasks have a dependency cycle: {[t.key for t in pending]}")
        for task in ready:
            ordered.append(task)
            done.add(task.key)
            pending.remove(task)
    return ordered


def settled(task: Task, outcome: Outcome) -> bool:
    """Everything `task` needs has finished one way or the other."""
    finished = outcome.results.keys() | outcome.failures.keys() | outcome.blocked.keys()
    return all(n in finished for n in task.needs)


def mark_blocked(task: Task, outcome: Outcome) -> bool:
    """Mark `task` blocked (and say why) when something it needs did not succeed."""
    bad = [n for n in task.needs if n in outcome.failures or n in outcome.blocked]
    if bad:
        outcome.blocked[task.key] = f"needs {', '.join(bad)}, which did not finish"
    return bool(bad)


def settle_failure(task: Task, error: BaseException, outcome: Outcome, retries: int) -> bool:
    """Record a failed attempt of `task`; returns True when it should be tried again (fewer than
    `retries` retries so far and the error is `retriable`), else records the failure by key."""
    attempts = outcome.attempts.get(task.key, 1)
    if attempts <= retries and retriable(error):
        outcome.attempts[task.key] = attempts + 1
        return True
    tried = f" (after {attempts} attempts)" if attempts > 1 else ""
    outcome.failures[task.key] = error_text(error) + tried
    return False


def progress_bar(total_s: float, enabled: bool, desc: str = "study") -> Any:
    """One tqdm bar over a whole plan, weighted by each task's cost, so rate and ETA are in plan-seconds."""
    from tqdm import tqdm

    return tqdm(
        total=round(total_s, 1),
        unit="plan-s",
        disable=not enabled,
        dynamic_ncols=True,
        desc=desc,
        mininterval=0.5 if sys.stderr.isatty() else 30.0,  # a log file gets a line every 30 s
        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} plan-s [{elapsed}<{remaining}] {postfix}",
    )


def format_duration(seconds: float) -> str:
    """`1 h 05 min`, `12 min`, `40 s`."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def now_s() -> float:
    return time.perf_counter()
