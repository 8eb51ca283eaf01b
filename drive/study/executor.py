"""The local executor: runs a study's jobs in a pool of spawned worker processes (one torch thread each),
or in this process with one worker, respecting each job's dependency (an evaluation waits for its
training).

A failed job is reported by name with its error, the jobs that depend on it are not started, and
everything else goes on; the caller decides the exit status. Progress is one bar over the whole plan,
weighted by each job's estimated cost in seconds, so its rate and ETA are in plan-seconds.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Task:
    """One unit of work for an executor.

    Attributes:
        key: unique name (reports, dependencies).
        fn: a picklable top-level function, called as `fn(*args)`.
        args: its arguments (picklable).
        needs: keys of tasks that must succeed first.
        cost_s: estimated run time, s (progress and ETA only).
    """

    key: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    needs: tuple[str, ...] = ()
    cost_s: float = 1.0


@dataclass
class Outcome:
    """What running the tasks gave: results by key, failures by key (error text), and tasks not run
    because a task they need failed."""

    results: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    blocked: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.blocked


class LocalExecutor:
    """Runs tasks on this machine.

    Args:
        workers: processes at once; 1 runs every task in this process (same results, easier debugging).
        progress: show the progress bar.
    """

    def __init__(self, workers: int = 1, progress: bool = True) -> None:
        if workers < 1:
            raise ValueError(f"workers must be ≥ 1, got {workers}")
        self.workers = workers
        self.progress = progress

    def run(self, tasks: list[Task]) -> Outcome:
        """Run `tasks` (dependencies first); returns results and failures by key."""
        _check_graph(tasks)
        bar = _bar(sum(t.cost_s for t in tasks), self.progress)
        try:
            if self.workers == 1:
                return self._run_inline(tasks, bar)
            return self._run_pool(tasks, bar)
        finally:
            bar.close()

    def _run_inline(self, tasks: list[Task], bar: Any) -> Outcome:
        outcome = Outcome()
        with _single_torch_thread():
            for task in _order(tasks):
                if _blocked(task, outcome):
                    bar.update(task.cost_s)
                    continue
                bar.set_postfix_str(task.key, refresh=False)
                try:
                    outcome.results[task.key] = task.fn(*task.args)
                except Exception as err:  # reported by name; the study goes on
                    outcome.failures[task.key] = f"{type(err).__name__}: {err}"
                bar.update(task.cost_s)
        return outcome

    def _run_pool(self, tasks: list[Task], bar: Any) -> Outcome:
        outcome = Outcome()
        waiting = list(_order(tasks))
        running: dict[Future[Any], Task] = {}
        ctx = mp.get_context("spawn")  # fork would copy torch's thread pools and locks
        with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker) as pool:
            try:
                while waiting or running:
                    for task in [t for t in waiting if _ready(t, outcome)]:
                        if len(running) >= self.workers:
                            break
                        waiting.remove(task)
                        if _blocked(task, outcome):
                            bar.update(task.cost_s)
                            continue
                        running[pool.submit(task.fn, *task.args)] = task
                    if not running:
                        continue
                    done, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
                    for future in done:
                        task = running.pop(future)
                        try:
                            outcome.results[task.key] = future.result()
                        except Exception as err:
                            outcome.failures[task.key] = f"{type(err).__name__}: {err}"
                        bar.update(task.cost_s)
                    bar.set_postfix_str(", ".join(t.key for t in running.values()), refresh=False)
            except BaseException:
                for future in running:
                    future.cancel()
                raise
        return outcome


def _check_graph(tasks: list[Task]) -> None:
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("tasks: repeated keys")
    missing = sorted({n for t in tasks for n in t.needs} - set(keys))
    if missing:
        raise ValueError(f"tasks need unknown tasks {missing}")


def _order(tasks: list[Task]) -> list[Task]:
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


def _ready(task: Task, outcome: Outcome) -> bool:
    settled = outcome.results.keys() | outcome.failures.keys() | outcome.blocked.keys()
    return all(n in settled for n in task.needs)


def _blocked(task: Task, outcome: Outcome) -> bool:
    """Mark `task` blocked (and say why) when something it needs did not succeed."""
    bad = [n for n in task.needs if n in outcome.failures or n in outcome.blocked]
    if bad:
        outcome.blocked[task.key] = f"needs {', '.join(bad)}, which did not finish"
    return bool(bad)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


class _single_torch_thread:
    """One torch thread while running inline: the numerics of a pool worker."""

    def __enter__(self) -> None:
        import torch

        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.threads)


def _bar(total_s: float, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=round(total_s, 1),
        unit="plan-s",
        disable=not enabled,
        dynamic_ncols=True,
        desc="study",
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
