"""Sensor plumbing for the CARLA backend: frame-matched camera queue, event collectors, BGRA → RGB.

In synchronous mode `world.tick()` returns the id of the frame it simulated, and every sensor delivers
its data for that frame later, on the client's streaming thread; images may arrive a few frames late
and out of order. `FrameQueue.get(frame)` waits for exactly the image of `frame`, drops older ones and
keeps newer ones, and fails with a clear error after a timeout (a server that does not render gives no
images at all). Collision and lane-invasion events are collected as they come and drained once per step.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np


class SensorTimeoutError(TimeoutError):
    """A sensor gave no data for the frame the world just simulated."""


def bgra_to_rgb(raw: bytes | memoryview | np.ndarray, height: int, width: int) -> np.ndarray:
    """A CARLA camera buffer (BGRA, 4 bytes per pixel, rows top to bottom) as RGB.

    Args:
        raw: `carla.Image.raw_data`, height·width·4 bytes.
        height, width: image size, pixels.

    Returns:
        (height, width, 3) uint8 RGB, C-contiguous, a copy (the buffer is not kept).
    """
    buf = np.frombuffer(raw, dtype=np.uint8)
    if buf.size != height * width * 4:
        raise ValueError(
            f"camera buffer has {buf.size} bytes, expected {height}x{width}x4 = {height * width * 4}"
        )
    return np.ascontiguousarray(buf.reshape(height, width, 4)[:, :, 2::-1])


class FrameQueue:
    """Sensor data keyed by frame id, filled from the sensor's callback thread.

    Args:
        name: the sensor, for error messages.
    """

    def __init__(self, name: str = "camera") -> None:
        self.name = name
        self._items: dict[int, Any] = {}
        self._cond = threading.Condition()
        self.dropped = 0  # stale items discarded (frames already consumed or skipped)
        self._consumed = -1

    def put(self, item: Any) -> None:
        """Callback: store `item` (anything with an int `frame`)."""
        with self._cond:
            frame = int(item.frame)
            if frame <= self._consumed:
                self.dropped += 1
                return
            self._items[frame] = item
            self._cond.notify_all()

    def get(self, frame: int, timeout_s: float) -> Any:
        """The item of `frame`; items of older frames are dropped.

        Raises:
            SensorTimeoutError: it did not arrive within `timeout_s`.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while frame not in self._items:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted(self._items)
                    raise SensorTimeoutError(
                        f"no {self.name} data for world frame {frame} within {timeout_s:g} s "
                        f"(frames waiting: {seen[-5:] or 'none'}). Is the CARLA server rendering? Start it "
                        "with -RenderOffScreen (not -nullrhi) and keep no_rendering_mode off."
                    )
                self._cond.wait(left)
            item = self._items.pop(frame)
            stale = [f for f in self._items if f < frame]
            for f in stale:
                del self._items[f]
            self.dropped += len(stale)
            self._consumed = frame
            return item

    def clear(self) -> None:
        """Forget everything (a new episode)."""
        with self._cond:
            self._items.clear()
            self._consumed = -1


class EventCollector:
    """Events from a sensor callback (collisions, lane invasions), drained once per control step."""

    def __init__(self) -> None:
        self._events: list[Any] = []
        self._lock = threading.Lock()

    def put(self, event: Any) -> None:
        """Callback: keep `event`."""
        with self._lock:
            self._events.append(event)

    def drain(self) -> list[Any]:
        """Every event received since the last drain, oldest first.

        An event that arrives after the step of its frame was observed is reported at the next step:
        late, never lost.
        """
        with self._lock:
            events, self._events = self._events, []
        return sorted(events, key=lambda e: int(getattr(e, "frame", 0)))
