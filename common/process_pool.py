"""A process pool that a Ctrl-C stops cleanly: the parent owns the interrupt, its workers never see it.

A terminal sends Ctrl-C (SIGINT) to the whole process group, and a service manager often sends SIGTERM the
same way. In a plain `ProcessPoolExecutor` every worker then dies in the middle of whatever it was doing
— while importing torch, waiting for work, writing a recording — each with its own traceback, and the
executor's manager thread trips over the broken pool (CPython 3.11 raises `InvalidStateError` on the
cancelled futures). Here instead:

- workers are born with SIGINT and SIGTERM blocked (the signal mask survives spawn's fork + exec, and
  Python never unblocks them), so a signal to the group reaches only the parent, which raises
  `KeyboardInterrupt` (or the CLI's `Terminated`) as usual;
- leaving the pool's `with` block on an exception cancels what has not started and sends each worker
  SIGUSR1, which raises `WorkerStopped` inside a running job (its `finally` blocks run: a recording is
  closed as aborted) and makes a worker that is between jobs refuse the next one; then the pool shuts
  down normally; if a job has not returned after `stop_timeout_s`, the workers are killed.

Jobs are ordinary picklable callables; results and exceptions come back through the futures as usual.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from contextlib import contextmanager, suppress
from types import FrameType, TracebackType
from typing import Any

PARENT_SIGNALS = {signal.SIGINT, signal.SIGTERM}
"""Signals only the parent handles."""
STOP_SIGNAL = signal.SIGUSR1
"""What the parent sends a worker to stop its job (blocked until the worker has its handler)."""

_stopping = False  # in a worker: the parent asked it to stop
_in_job = False  # in a worker: a job is running


class WorkerStopped(KeyboardInterrupt):
    """Raised inside a worker's job when the parent stops the pool (as Ctrl-C would be in one process)."""


class WorkerPool:
    """`ProcessPoolExecutor` on spawned workers that leave interrupts to the parent (module docstring).

    Args:
        workers: number of worker processes.
        initializer: run once in each worker before its first job (e.g. to pin torch to one thread).
        initargs: its arguments.
        stop_timeout_s: how long to wait for stopped workers before killing them (s).

    Use as a context manager; `submit` returns a `concurrent.futures.Future`.
    """

    def __init__(
        self,
        workers: int,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.stop_timeout_s = stop_timeout_s
        self._futures: list[Future[Any]] = []
        self._executor = ProcessPoolExecutor(
            workers,
            mp_context=mp.get_context("spawn"),  # fork would copy torch's thread pools and locks
            initializer=_init_worker,
            initargs=(initializer, initargs),
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Run `fn(*args)` in a worker."""
        with _parent_signals_blocked():  # workers start at the first submit and inherit the mask
            future = self._executor.submit(_run_job, fn, args)
        self._futures.append(future)
        return future

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if error is not None:
            self.stop()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def stop(self) -> None:
        """Cancel the jobs that have not started and stop the running ones (WorkerStopped in the job);
        kill the workers whose job has not returned after `stop_timeout_s`."""
        for future in self._futures:
            future.cancel()
        running = [f for f in self._futures if not f.done()]
        processes = list(getattr(self._executor, "_processes", {}).values())  # CPython's worker table
        for process in processes:
            with suppress(ProcessLookupError):
                os.kill(process.pid, STOP_SIGNAL)
        _, stuck = wait(running, timeout=self.stop_timeout_s)
        if stuck:  # a job that never returns to Python (so never sees the stop)
            for process in processes:
                process.kill()


@contextmanager
def _parent_signals_blocked() -> Iterator[None]:
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, PARENT_SIGNALS | {STOP_SIGNAL})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _init_worker(initializer: Callable[..., object] | None, initargs: tuple[Any, ...]) -> None:
    signal.signal(STOP_SIGNAL, _on_stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {STOP_SIGNAL})  # a stop sent during start-up lands now
    if initializer is not None:
        initializer(*initargs)


def _on_stop(signum: int, frame: FrameType | None) -> None:
    global _stopping
    _stopping = True
    if _in_job:
        raise WorkerStopped("stopped by the parent process")


def _run_job(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    global _in_job
    if _stopping:
        raise WorkerStopped("stopped by the parent process before the job started")
    _in_job = True
    try:
        return fn(*args)
    finally:
        _in_job = False
