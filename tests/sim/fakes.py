"""A minimal simulator for wrapper tests: a 1-D lateral model on a straight road, frames that encode
their number, and the privileged info every backend gives."""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.types import Command, Observation, Pose


class FakeSim:
    """Lateral offset integrates the commanded curvature; the road's own curvature is `road_1pm`.

    The image is uniform grey at level (frame mod 200) + 28 so tests can read the frame back.
    """

    def __init__(
        self,
        height: int = 12,
        width: int = 16,
        speed_mps: float = 10.0,
        dt_s: float = 0.05,
        road_1pm: float = 0.0,
    ) -> None:
        self.shape = (height, width, 3)
        self.speed_mps, self.dt_s, self.road_1pm = speed_mps, dt_s, road_1pm
        self.teleports: list[float] = []
        self.closed = False

    def _obs(self) -> Observation:
        image = np.full(self.shape, (self.frame % 200) + 28, np.uint8)
        return Observation(image, self.speed_mps, self.frame * self.dt_s, self.frame)

    def _info(self) -> dict[str, Any]:
        return {
            "lateral_offset_m": self.offset_m,
            "heading_error_rad": self.heading_rad,
            "progress_m": self.s_m,
            "s_m": self.s_m,
            "on_road": abs(self.offset_m) < 2.25,
            "collision": False,
            "expert_curvature_1pm": self.road_1pm - 0.5 * self.offset_m - 2.0 * self.heading_rad,
            "pose": Pose(self.s_m, self.offset_m, self.heading_rad),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.frame, self.offset_m, self.heading_rad, self.s_m = 0, 0.0, 0.0, 0.0
        return self._obs(), self._info()

    def step(self, command: Command):
        ds = self.speed_mps * self.dt_s
        self.heading_rad += (command.curvature_1pm - self.road_1pm) * ds
        self.offset_m += np.sin(self.heading_rad) * ds
        self.s_m += ds
        self.frame += 1
        return self._obs(), self._info()

    def teleport(self, s_m: float, lateral_offset_m: float = 0.0, heading_error_rad: float = 0.0):
        self.teleports.append(s_m)
        self.s_m, self.offset_m, self.heading_rad = s_m, lateral_offset_m, heading_error_rad
        return self._obs(), self._info()

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
