"""Camera frames through OpenCV: a device (`0`, `/dev/video0`) or a video file, with each frame's time.

A file plays at its own frame times (`CAP_PROP_POS_MSEC`): with `realtime` the reader waits until each
frame's time has come on the monotonic clock, as a camera would deliver it; the policy is told the time
between frames from those stamps. A device's frames are stamped with the monotonic clock on arrival.
Frames are converted BGR -> RGB and resized (INTER_AREA) to the model's camera size when they differ.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Frame:
    """One camera frame: (H, W, 3) uint8 RGB at the model's size, and its time, s (stream clock)."""

    image: np.ndarray
    time_s: float


class CameraSource:
    """Iterates over `Frame`s from a device index/path or a video file.

    Args:
        camera: a device index ("0"), a device path (/dev/video0) or a video file.
        height, width: the model's camera size, px.
        realtime: pace a video file at its frame times (a device paces itself).

    Raises:
        ValueError: OpenCV cannot open `camera` (one line naming it).
    """

    def __init__(self, camera: str, height: int, width: int, realtime: bool = True) -> None:
        self.is_file = Path(camera).is_file()
        source: int | str = int(camera) if camera.isdigit() else camera
        self._capture = cv2.VideoCapture(source)
        if not self._capture.isOpened():
            raise ValueError(f"--camera {camera!r}: OpenCV cannot open it as a device or a video file")
        self.size = (height, width)
        self.realtime = realtime

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        try:
            while True:
                ok, bgr = self._capture.read()
                if not ok:
                    return
                if self.is_file:
                    time_s = float(self._capture.get(cv2.CAP_PROP_POS_MSEC)) / 1e3
                    wait_s = start + time_s - time.monotonic()
                    if self.realtime and wait_s > 0:
                        time.sleep(wait_s)
                else:
                    time_s = time.monotonic() - start
                yield Frame(self._rgb(bgr), time_s)
        finally:
            self._capture.release()

    def _rgb(self, bgr: np.ndarray) -> np.ndarray:
        height, width = self.size
        if bgr.shape[:2] != (height, width):
            bgr = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
        rgb: np.ndarray = np.ascontiguousarray(bgr[:, :, ::-1])
        return rgb
