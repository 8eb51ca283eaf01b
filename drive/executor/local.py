"""The local executor: runs a plan's tasks in a pool of spawned worker processes (one torch thread each), or
in this process with one worker, respecting each task's dependencies (an evaluation waits for its
training).

The pool is `common.process_pool.WorkerPool`, the one `drive eval` uses: workers are born with SIGINT and
SIGTERM blocked, so a Ctrl-C reaches only this process, which stops the running jobs inside Python (their
`finally` blocks run) and exits with one message instead of a traceback per worker.

A failed task is tried again up to `retries` times (not when its error says the inputs are wrong), then
reported by name with its error; the tasks that depend on it are not started, and everything else goes
on; the caller decides the exit status. Progress is one bar over the whole plan, weighted by each task's
estimated cost in seconds, so its rate and ETA are in plan-seconds.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from common.interrupts import check
from drive.executor.tasks import (
    Outcome,
    Task,
    check_graph,
    mark_blocked,
    plan_order,
    progress_bar,
    settle_failure,
    settled,
)


class LocalExecutor:
    """Runs tasks on this machine.

    Args:
        workers: processes at once; 1 runs every task in this process (same results, easier debugging).
        progress: show the progress bar.
        retries: further attempts of a failed task.
        desc: the progress bar's label.
    """

    def __init__(
        self, workers: int = 1, progress: bool = True, retries: int = 0, desc: str = "study"
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be ≥ 1, got {workers}")
        if retries < 0:
            raise ValueError(f"retries must be ≥ 0, got {retries}")
        self.workers = workers
        self.progress = progress
        self.retries = retries
        self.desc = desc

    def run(self, tasks: list[Task]) -> Outcome:
        """Run `tasks` (dependencies first); returns results and failures by key."""
        check_graph(tasks)
        bar = progress_bar(sum(t.cost_s for t in tasks), self.progress, self.desc)
        try:
            if self.workers == 1:
                return self._run_inline(tasks, bar)
            return self._run_pool(tasks, bar)
        finally:
            bar.close()

    def _run_inline(self, tasks: list[Task], bar: Any) -> Outcome:
        outcome = Outcome()
        with _single_torch_thread():
            for task in plan_order(tasks):
                if mark_blocked(task, outcome):
                    bar.update(task.cost_s)
                    continue
                bar.set_postfix_str(task.key, refresh=False)
                while True:
                    try:
                        outcome.results[task.key] = task.fn(*task.args)
                    except Exception as err:  # reported by name; the plan goes on
                        if settle_failure(task, err, outcome, self.retries):
                            continue
                    break
                bar.update(task.cost_s)
        return outcome

    def _run_pool(self, tasks: list[Task], bar: Any) -> Outcome:
        from common.process_pool import WorkerPool

        outcome = Outcome()
        waiting = list(plan_order(tasks))
        running: dict[Future[Any], Task] = {}
        # On Ctrl-C (or any error here) leaving the `with` stops the running jobs inside their workers.
        with WorkerPool(self.workers, initializer=_init_worker) as pool:
            while waiting or running:
                for task in [t for t in waiting if settled(t, outcome)]:
                    if len(running) >= self.workers:
                        break
                    waiting.remove(task)
                    if mark_blocked(task, outcome):
                        bar.update(task.cost_s)
                        continue
                    running[pool.submit(task.fn, *task.args)] = task
                if not running:
                    continue
                check()  # a Ctrl-C swallowed where it landed (common/interrupts.py)
                done, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in done:
                    task = running.pop(future)
                    try:
                        outcome.results[task.key] = future.result()
                    except Exception as err:
                        if settle_failure(task, err, outcome, self.retries):
                            running[pool.submit(task.fn, *task.args)] = task
                            continue
                    bar.update(task.cost_s)
                bar.set_postfix_str(", ".join(t.key for t in running.values()), refresh=False)
        return outcome


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
