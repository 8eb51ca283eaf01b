"""Ctrl-C and SIGTERM that are never lost.

Python raises a signal's exception in the main thread wherever it happens to be. When that is inside a
weakref callback or a `__del__` (the garbage collector runs them at arbitrary moments), the exception
cannot propagate: CPython prints "Exception ignored in ..." with a traceback and carries on, and the
user's Ctrl-C is gone — an evaluation then finishes as if it had never been interrupted. So the handlers
installed here also note the signal, `check()` (called once per step by the long loops: the closed loop,
the evaluation and study pools' wait loops, training) raises it again, and the note of an exception
that was swallowed is not printed.

    >>> with handle_signals():
    ...     check()  # nothing pending: returns
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that every `finally` and `__exit__` runs (an episode being
    recorded is closed as aborted, never as complete), as for Ctrl-C."""


_PENDING: list[type[KeyboardInterrupt]] = []
"""The exception of a signal received since `handle_signals` began (at most one kept)."""


def _handler(signum: int, frame: FrameType | None) -> None:
    kind = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    _PENDING[:] = [kind]
    raise kind(f"signal {signum}")


def check() -> None:
    """Raise the pending signal's exception, if a signal came (even one swallowed where it landed)."""
    if _PENDING:
        raise _PENDING[0]("signal received earlier")


def _unraisable(previous: Any) -> Any:
    def hook(unraisable: Any) -> None:
        if _PENDING and isinstance(unraisable.exc_value, KeyboardInterrupt):
            return  # noted in _PENDING: `check()` raises it at the next step
        previous(unraisable)

    return hook


@contextmanager
def handle_signals(restore: bool = True) -> Iterator[None]:
    """Within the block, SIGINT raises KeyboardInterrupt and SIGTERM `Terminated`, both noted for
    `check()`; outside the main thread it does nothing (signal handlers live in the main thread).

    Args:
        restore: put the previous handlers back at the end. False, for a process's entry point: leave
            the operating system's default (end the process, no Python code runs), since what follows
            is the interpreter's shutdown, where a signal can interrupt nothing worth keeping but would
            raise inside an atexit callback or a library's finalizer and print a traceback.
    """
    _PENDING.clear()
    try:
        previous = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread (e.g. main() called from a test's worker thread)
        yield
        return
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _unraisable(previous_hook)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if restore else signal.SIG_DFL)
        sys.unraisablehook = previous_hook
        _PENDING.clear()
