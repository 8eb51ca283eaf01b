"""The simulators' expert (`PurePursuitExpert`: pure pursuit on the lane centre, the source of
`info["expert_curvature_1pm"]`) and the recovery perturbation used when recording. The closed-loop
driver that follows that label is `drive.closed_loop.drivers.ExpertDriver`.

Recording recovery data (CILRS/Roach convention, see docs/conventions.md): the vehicle executes
`expert + perturbation` while the label saved is the expert's command alone, so the recording holds
states off the centre line paired with the command that steers back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.tracks.geometry import TrackLocator
from sim.tracks.track import Track
from sim.types import Pose


@dataclass(frozen=True)
class ExpertConfig:
    """Pure-pursuit parameters.

    Attributes:
        lookahead_min_m: shortest lookahead distance, m (used at low speed).
        lookahead_time_s: lookahead grows as speed × this time, s.
    """

    lookahead_min_m: float = 4.0
    lookahead_time_s: float = 0.6

    def __post_init__(self) -> None:
        if not self.lookahead_min_m > 0:
            raise ValueError(f"ExpertConfig.lookahead_min_m must be > 0, got {self.lookahead_min_m}")
        if not self.lookahead_time_s >= 0:
            raise ValueError(f"ExpertConfig.lookahead_time_s must be >= 0, got {self.lookahead_time_s}")


class PurePursuitExpert:
    """The privileged expert every backend runs to label its frames: pure pursuit from the rear axle
    to the lane centre `L_d = max(min, v·t)` ahead along the road.

    κ = 2·sin(α)/d, where α is the bearing of the target point from the vehicle's heading and d its
    distance; on a circle with the vehicle on it this is exactly the circle's curvature.

    Args:
        track: the track to follow.
        config: lookahead parameters.
        locator: a `TrackLocator` for `track` to share (one is made if None).
    """

    def __init__(
        self, track: Track, config: ExpertConfig | None = None, locator: TrackLocator | None = None
    ) -> None:
        self.track = track
        self.config = config or ExpertConfig()
        self.locator = locator or TrackLocator(track)

    def lookahead_m(self, speed_mps: float) -> float:
        """Lookahead distance along the road at `speed_mps`, m."""
        return max(self.config.lookahead_min_m, self.config.lookahead_time_s * speed_mps)

    def curvature_1pm(self, pose: Pose, speed_mps: float, s_m: float | None = None) -> float:
        """The expert's curvature command for a rear-axle pose, 1/m, left positive.

        Args:
            pose: rear-axle pose.
            speed_mps: forward speed, m/s.
            s_m: the pose's arc-length position if already known (saves a nearest-point search), m.
        """
        if s_m is None:
            s_m = self.locator.locate(pose).s_m
        target = self.locator.point_at(s_m + self.lookahead_m(speed_mps))
        dx, dy = target.x_m - pose.x_m, target.y_m - pose.y_m
        dist = math.hypot(dx, dy)
        alpha = math.atan2(dy, dx) - pose.yaw_rad
        return 2.0 * math.sin(alpha) / max(dist, 1e-6)

    def act(self, info: dict[str, Any]) -> float:
        """Curvature command from a simulator `info` dict (keys `pose`, `speed_mps`, optional `s_m`), 1/m."""
        return self.curvature_1pm(info["pose"], float(info["speed_mps"]), info.get("s_m"))


@dataclass(frozen=True)
class PerturbationConfig:
    """Random pulses of extra curvature added to the executed command (uniform draws in each range).

    Attributes:
        gap_s: (min, max) quiet time between the end of one pulse and the start of the next, s.
        duration_s: (min, max) pulse length, s.
        magnitude_1pm: (min, max) pulse size, 1/m; the sign is random.
    """

    gap_s: tuple[float, float] = (2.0, 6.0)
    duration_s: tuple[float, float] = (0.5, 1.5)
    magnitude_1pm: tuple[float, float] = (0.02, 0.06)

    def __post_init__(self) -> None:
        for name in ("gap_s", "duration_s", "magnitude_1pm"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"PerturbationConfig.{name} must be (min, max) with 0 <= min <= max")
        if not self.gap_s[0] + self.duration_s[0] > 0:
            raise ValueError("PerturbationConfig: gap_s[0] + duration_s[0] must be > 0 (time must advance)")


class RecoveryPerturbation:
    """Curvature offset as a function of simulation time: zero, then a pulse, then zero again...

    Call `offset_1pm(t)` with non-decreasing times (each control step's `info['time_s']`); the
    schedule is drawn from a Generator seeded by `seed`, so one episode seed gives one schedule.

    Args:
        config: pulse ranges.
        seed: episode seed (or a Generator to draw from).
    """

    def __init__(self, config: PerturbationConfig | None = None, seed: int | np.random.Generator = 0):
        self.config = config or PerturbationConfig()
        self.reset(seed)

    def reset(self, seed: int | np.random.Generator) -> None:
        """Restart the schedule at time 0 with a new seed."""
        self._rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self._last_t_s = -math.inf
        self._start_s = self._draw(self.config.gap_s)
        self._end_s = self._start_s + self._draw(self.config.duration_s)
        self._value_1pm = self._draw_magnitude()

    def _draw(self, bounds: tuple[float, float]) -> float:
        return float(self._rng.uniform(bounds[0], bounds[1]))

    def _draw_magnitude(self) -> float:
        sign = 1.0 if self._rng.integers(0, 2) else -1.0
        return sign * self._draw(self.config.magnitude_1pm)

    def offset_1pm(self, time_s: float) -> float:
        """Extra curvature to add to the executed command at `time_s`, 1/m."""
        if time_s < self._last_t_s:
            raise ValueError(f"time went backwards: {time_s} < {self._last_t_s}; call reset() first")
        self._last_t_s = time_s
        while time_s >= self._end_s:  # move past finished pulses (several if called sparsely)
            self._start_s = self._end_s + self._draw(self.config.gap_s)
            self._end_s = self._start_s + self._draw(self.config.duration_s)
            self._value_1pm = self._draw_magnitude()
        return self._value_1pm if time_s >= self._start_s else 0.0
