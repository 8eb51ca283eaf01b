"""The onboard loop on real I/O: camera frames -> `OnboardPolicy` -> command messages, with a watchdog.

    CameraSource ─ frame, time ─► policy.act(frame, elapsed_s) ─► CommandSender ─► Output (stdout/UDP/CAN)
                                                                        ▲
                                                    Watchdog thread ────┘ STALL when nothing was sent
                                                                          for `stall_timeout_s`

Every frame yields exactly one message: VALID with the curvature, or, when the step took longer than
its deadline, OVERRUN with curvature 0 (the command is stale: stop). The watchdog adds a STALL message
(curvature 0) whenever no message went out for `stall_timeout_s` (a camera that stopped delivering, a
step stuck far past its deadline), and again every timeout while that lasts. All messages share one
sequence counter, so a receiver sees every message in order and can tell a lost one by a gap.
The elapsed time a continuous-time graph integrates over is the difference of the frame times.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from drive.closed_loop.onboard_drive import DeadlineStats
from drive.onboard_io.camera import Frame
from drive.onboard_io.messages import OVERRUN, STALL, VALID, encode
from drive.onboard_io.outputs import Output


class StepPolicy(Protocol):
    def act(self, image_rgb_u8: np.ndarray, elapsed_s: float | None = None) -> float: ...


class CommandSender:
    """Numbers, stamps and sends messages; thread-safe (the loop and the watchdog both send).

    Args:
        output: where the payloads go.
        clock: monotonic seconds (injectable).
    """

    def __init__(self, output: Output, clock: Callable[[], float] = time.monotonic) -> None:
        self.output = output
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()
        self.sequence = 0
        self.last_sent_s = self._start
        self.counts = {"valid": 0, "overrun": 0, "stall": 0}

    def send(self, curvature_1pm: float, flags: int) -> None:
        with self._lock:
            now = self._clock()
            timestamp_ms = int((now - self._start) * 1e3)
            self.output.send(
                encode(curvature_1pm if flags & VALID else 0.0, flags, self.sequence, timestamp_ms)
            )
            self.sequence = (self.sequence + 1) & 0xFF
            self.last_sent_s = now
            kind = "valid" if flags & VALID else ("overrun" if flags & OVERRUN else "stall")
            self.counts[kind] += 1


class Watchdog:
    """Sends STALL through `sender` when nothing was sent for `timeout_s`; a daemon thread."""

    def __init__(self, sender: CommandSender, timeout_s: float, clock: Callable[[], float] = time.monotonic):
        if not timeout_s > 0:
            raise ValueError(f"watchdog timeout must be > 0 s, got {timeout_s}")
        self.sender, self.timeout_s, self._clock = sender, float(timeout_s), clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="onboard-watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.timeout_s / 4):
            if self._clock() - self.sender.last_sent_s > self.timeout_s:
                self.sender.send(0.0, STALL)


@dataclass
class RunResult:
    """What a run did: frames, messages by kind, the latency figures (`DeadlineStats.summary`)."""

    frames: int
    messages: dict[str, int]
    deadline: dict[str, Any] = field(default_factory=dict)


def run_onboard(
    policy: StepPolicy,
    frames: Iterable[Frame],
    output: Output,
    *,
    deadline_s: float,
    stall_timeout_s: float | None = None,
    max_frames: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> RunResult:
    """Drive `policy` from `frames` and send one message per frame to `output` (module docstring).

    Args:
        policy: an `OnboardPolicy` (or anything with its `act(image, elapsed_s)`).
        frames: `Frame`s (e.g. a `CameraSource`).
        output: the command output.
        deadline_s: time budget of one step, s (the model's control period, usually).
        stall_timeout_s: watchdog timeout, s; default 3 deadlines.
        max_frames: stop after this many frames (None: when the source ends).
        clock: the latency clock.
    """
    sender = CommandSender(output)
    stats = DeadlineStats([])
    count, last_time_s = 0, None
    with Watchdog(sender, stall_timeout_s if stall_timeout_s is not None else 3 * deadline_s):
        for frame in frames:
            # Time since the previous frame from the stream's own stamps; the first: one period.
            elapsed_s = None if last_time_s is None else max(frame.time_s - last_time_s, 1e-6)
            last_time_s = frame.time_s
            start = clock()
            curvature_1pm = policy.act(frame.image, elapsed_s)  # None on the first: one period
            latency_s = clock() - start
            stats.latencies_ms.append(latency_s * 1e3)
            if latency_s > deadline_s:
                stats.misses += 1
                sender.send(0.0, OVERRUN)
            else:
                sender.send(curvature_1pm, VALID)
            count += 1
            if max_frames is not None and count >= max_frames:
                break
    return RunResult(count, dict(sender.counts), stats.summary())
