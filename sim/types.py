"""Messages and the simulator protocol shared by every backend (embedded, CARLA) and the closed loop.

Conventions (docs/conventions.md): SI units in names, left positive for curvature, lateral offset and
yaw; images are RGB uint8, (H, W, 3); time is simulation time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

DT_CTRL_S = 0.05
"""Default control period: 20 Hz, CARLA's usual fixed step."""

INPUT_NOISE_SHAPE = (78, 200, 3)
"""Shape of `Observation.input_noise`: the network input, (height, width, channels) — the NCP paper's
78x200 (perception/preprocess.py NCP_INPUT_HEIGHT x NCP_INPUT_WIDTH; sim does not import perception)."""


@dataclass(frozen=True)
class Observation:
    """What the policy sees at one control step.

    Attributes:
        image: camera frame, (H, W, 3) uint8 RGB.
        speed_mps: forward speed of the ego vehicle, m/s.
        timestamp_s: simulation time of the frame, s.
        frame: control-step index since reset.
        input_noise: noise for the policy to add to its per-image-standardised network input,
            `INPUT_NOISE_SHAPE` (78, 200, 3) float32, in units of that input's standard deviation
            (`GaussianNoise(space="standardized")`); None: none. The camera image stays clean.
    """

    image: np.ndarray
    speed_mps: float
    timestamp_s: float
    frame: int
    input_noise: np.ndarray | None = None


@dataclass(frozen=True)
class Command:
    """What the policy asks of the vehicle.

    Attributes:
        curvature_1pm: signed path curvature, 1/m, left positive (yaw rate / speed, as in the NCP paper).
        target_speed_mps: speed set-point for the longitudinal PID; None keeps the simulator's default.
    """

    curvature_1pm: float
    target_speed_mps: float | None = None


@dataclass(frozen=True)
class Pose:
    """Planar pose in the world frame (x east, y north, yaw counter-clockwise from x), m and rad."""

    x_m: float
    y_m: float
    yaw_rad: float


INFO_KEYS = (
    "lateral_offset_m",  # signed distance from the lane centre, left positive, m
    "heading_error_rad",  # vehicle yaw minus lane direction, left positive, rad
    "progress_m",  # distance travelled along the route since reset, m
    "on_road",  # bool: the whole width of the vehicle is on the paved road
    "collision",  # bool: a collision happened during the last step
    "expert_curvature_1pm",  # the pure-pursuit expert's curvature for the current state, 1/m
    "pose",  # Pose of the vehicle
)
"""Privileged truth every backend puts in `info`; the policy never sees it."""

RESET_OPTIONS = ("start_s_m", "lateral_offset_m", "heading_error_rad", "speed_mps")
"""Keys `Simulator.reset(options=...)` takes: where along the route, how far off the centre, how
turned, how fast the episode starts."""


def checked_reset_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of `options` (None: empty); ValueError naming any key not in `RESET_OPTIONS`."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(RESET_OPTIONS))
    if unknown:
        raise ValueError(f"unknown reset option(s) {unknown}; valid: {', '.join(RESET_OPTIONS)}")
    return options


class EpisodeSeeds:
    """The episode seeds a backend's `reset` uses: the given seed, or, for `seed=None`, the next draw
    of a generator seeded by the last given seed (fresh entropy if none was given yet)."""

    def __init__(self) -> None:
        self._rng: np.random.Generator | None = None

    def next(self, seed: int | None) -> int:
        """The episode seed for `reset(seed=seed)`."""
        if seed is None:
            if self._rng is None:
                self._rng = np.random.default_rng()
            return int(self._rng.integers(2**63))
        self._rng = np.random.default_rng(int(seed))
        return int(seed)


@runtime_checkable
class Simulator(Protocol):
    """Gymnasium-shaped driving simulator without reward.

    All randomness comes from the `seed` given to `reset`: the same seed gives the same rollout,
    bit for bit.
    """

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        """Start an episode; returns the first observation and privileged info (INFO_KEYS)."""
        ...

    def step(self, command: Command) -> tuple[Observation, dict[str, Any]]:
        """Apply `command` for one control period; returns the next observation and info."""
        ...

    def close(self) -> None:
        """Release resources; safe to call twice."""
        ...

    def __enter__(self) -> Simulator: ...

    def __exit__(self, *exc: object) -> None: ...
