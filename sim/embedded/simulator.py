"""The embedded simulator: a procedural track, the bicycle vehicle, the expert and the camera renderer.

Implements the `Simulator` protocol of `sim/types.py`. All randomness comes from the reset seed: it
picks the start position (unless fixed) and seeds the renderer, so the same seed gives bit-identical
frames and telemetry. The pose in `info` is the rear-axle centre (the point whose path curvature is
the commanded curvature); the renderer gets this pose and places the camera `camera.forward_m` ahead
of it on the car's axis.

Example:
    >>> from sim.embedded.simulator import EmbeddedSimConfig, EmbeddedSimulator
    >>> from sim.types import Command
    >>> with EmbeddedSimulator(EmbeddedSimConfig(track="oval", render=False)) as sim:
    ...     obs, info = sim.reset(seed=0)
    ...     obs, info = sim.step(Command(info["expert_curvature_1pm"]))
    >>> obs.frame, round(obs.timestamp_s, 3), info["on_road"]
    (1, 0.05, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.conditions import CONDITIONS
from sim.embedded.camera import CameraConfig, Renderer
from sim.embedded.vehicle import Vehicle, VehicleConfig
from sim.expert import ExpertConfig, PurePursuitExpert
from sim.tracks.geometry import ProgressTracker, TrackLocator, on_road
from sim.tracks.track_gen import make_track, validate_track_name
from sim.types import DT_CTRL_S, Command, EpisodeSeeds, Observation, checked_reset_options

"""Keys `reset(options=...)` accepts: start arc length (m), offset left of centre (m), yaw left of
the lane (rad), initial speed (m/s)."""


@dataclass(frozen=True)
class EmbeddedSimConfig:
    """Everything that defines an embedded-simulator run (saved beside every artifact).

    Attributes:
        track: preset name (`sim.tracks.track_gen.list_tracks()`) or "seed-<n>".
        condition: weather/lighting, one of `sim.conditions.CONDITIONS`.
        camera: camera intrinsics and mounting (height, pitch, `forward_m` ahead of the rear axle).
        vehicle: vehicle geometry, actuators and speed controller.
        expert: the pure-pursuit expert's parameters (`sim.expert.PurePursuitExpert`).
        dt_ctrl_s: control period, s (20 Hz).
        physics_substeps: physics sub-steps per control step (4 × 12.5 ms at 20 Hz).
        target_speed_mps: default speed set-point, m/s. 8 m/s matches the CARLA runs; the NCP paper
            drove 4.47 m/s (set it here to reproduce that).
        start_speed_mps: speed at reset, m/s; None starts at `target_speed_mps`.
        start_s_m: arc length of the start, m; None draws it uniformly from the reset seed.
        max_time_s: episode time after which `info["truncated"]` is True, s; None: never.
        max_laps: completed laps after which `info["truncated"]` is True; None: never.
        render: False skips the renderer and returns a black frame (fast physics-only runs).
    """

    track: str = "country"
    condition: str = "summer"
    camera: CameraConfig = field(default_factory=CameraConfig)
    vehicle: VehicleConfig = field(default_factory=VehicleConfig)
    expert: ExpertConfig = field(default_factory=ExpertConfig)
    dt_ctrl_s: float = DT_CTRL_S
    physics_substeps: int = 4
    target_speed_mps: float = 8.0
    start_speed_mps: float | None = None
    start_s_m: float | None = None
    max_time_s: float | None = None
    max_laps: int | None = None
    render: bool = True

    def __post_init__(self) -> None:
        validate_track_name(self.track)
        if self.condition not in CONDITIONS:
            raise ValueError(f"unknown condition {self.condition!r}; valid: {', '.join(CONDITIONS)}")
        if not self.dt_ctrl_s > 0:
            raise ValueError(f"dt_ctrl_s must be > 0, got {self.dt_ctrl_s}")
        if not (isinstance(self.physics_substeps, int) and self.physics_substeps >= 1):
            raise ValueError(f"physics_substeps must be an int >= 1, got {self.physics_substeps}")
        if not self.target_speed_mps >= 0:
            raise ValueError(f"target_speed_mps must be >= 0, got {self.target_speed_mps}")
        if self.start_speed_mps is not None and not self.start_speed_mps >= 0:
            raise ValueError(f"start_speed_mps must be >= 0 or None, got {self.start_speed_mps}")
        if self.max_time_s is not None and not self.max_time_s > 0:
            raise ValueError(f"max_time_s must be > 0 or None, got {self.max_time_s}")
        if self.max_laps is not None and not self.max_laps >= 1:
            raise ValueError(f"max_laps must be >= 1 or None, got {self.max_laps}")


class EmbeddedSimulator:
    """Closed-loop driving on a procedural track (the `Simulator` protocol).

    `info` holds `sim.types.INFO_KEYS` plus: `s_m` (arc length, m), `lap` (completed laps),
    `curvature_1pm` (road curvature at the car, 1/m), `steer_rad` (road-wheel angle), `speed_mps`,
    `executed_curvature_1pm` (the wheels' path curvature now, 1/m), `commanded_curvature_1pm` (last
    command issued, 1/m), `time_s`, `truncated` (time or lap limit reached), `episode_seed`.
    `collision` is always False: the embedded world has no obstacles.

    Args:
        config: the run's configuration.
    """

    def __init__(self, config: EmbeddedSimConfig | None = None) -> None:
        self.config = config or EmbeddedSimConfig()
        cfg = self.config
        self.track = make_track(cfg.track)
        self.locator = TrackLocator(self.track)
        self.expert = PurePursuitExpert(self.track, cfg.expert, self.locator)
        self.vehicle = Vehicle(cfg.vehicle, cfg.dt_ctrl_s / cfg.physics_substeps)
        self._renderer: Renderer | None = None
        self._black = np.zeros((cfg.camera.height, cfg.camera.width, 3), np.uint8)
        self._black.flags.writeable = False
        self._seeds = EpisodeSeeds()
        self._episode_seed: int | None = None
        self._progress: ProgressTracker | None = None
        self._frame = 0
        self._commanded_1pm = 0.0
        self._closed = False
        self.next_step_substeps: int | None = None
        """Physics sub-steps of the next `step()` only (None: `physics_substeps`); a step of uneven length,
        set by `drive.closed_loop.deployment_wrappers.TimingJitter`."""

    # -- Simulator protocol -------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        """Start an episode.

        Args:
            seed: episode seed; None continues the sequence of the last seeded reset (fresh entropy
                if there was none).
            options: optional overrides, keys from `RESET_OPTIONS`.

        Returns:
            The first observation (frame 0, time 0) and info.
        """
        self._check_open()
        options = checked_reset_options(options)
        seed = self._seeds.next(seed)
        self._episode_seed = seed
        start_ss, render_ss = np.random.SeedSequence(seed).spawn(2)
        cfg = self.config
        start_s = options.get("start_s_m", cfg.start_s_m)
        if start_s is None:
            start_s = float(np.random.default_rng(start_ss).uniform(0.0, self.track.length_m))
        start_s = float(start_s) % self.track.length_m
        speed = options.get("speed_mps", cfg.start_speed_mps)
        speed = cfg.target_speed_mps if speed is None else float(speed)
        pose = self.locator.pose_at(
            start_s,
            float(options.get("lateral_offset_m", 0.0)),
            float(options.get("heading_error_rad", 0.0)),
        )
        road_kappa = self.locator.point_at(start_s).curvature_1pm
        self.vehicle.reset(pose, speed, road_kappa)  # wheels already following the road: no jolt
        self._commanded_1pm = road_kappa
        self._progress = ProgressTracker(self.track.length_m, self.locator.locate(pose).s_m)
        self._frame = 0
        if cfg.render:
            if self._renderer is not None and hasattr(self._renderer, "close"):
                self._renderer.close()
            render_seed = int(render_ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
            self._renderer = Renderer(self.track, cfg.camera, cfg.condition, render_seed)
        return self._observe()

    def step(self, command: Command) -> tuple[Observation, dict[str, Any]]:
        """Apply `command` for one control period (after the actuation delay); observe the result."""
        self._check_open()
        if self._progress is None:
            raise RuntimeError("call reset() before step()")
        if not isinstance(command, Command):
            raise TypeError(f"step() takes a sim.types.Command, got {type(command).__name__}")
        target = self.config.target_speed_mps
        if command.target_speed_mps is not None:
            target = float(command.target_speed_mps)
            if not (math.isfinite(target) and target >= 0):
                raise ValueError(f"target_speed_mps must be finite and >= 0, got {target}")
        self.vehicle.command(float(command.curvature_1pm))
        self._commanded_1pm = float(command.curvature_1pm)
        substeps, self.next_step_substeps = self.next_step_substeps, None
        self.vehicle.step(target, self.config.physics_substeps if substeps is None else max(1, substeps))
        self._frame += 1
        return self._observe()

    def teleport(
        self, s_m: float, lateral_offset_m: float = 0.0, heading_error_rad: float = 0.0
    ) -> tuple[Observation, dict[str, Any]]:
        """Move the car to the lane at `s_m` (safety-driver takeover); keeps speed, clock and frame
        count, drops pending commands and sets the wheels to follow the road. The jump does not
        count as progress.

        Returns:
            The observation and info at the new pose (same `frame` and time as before the jump).
        """
        self._check_open()
        if self._progress is None:
            raise RuntimeError("call reset() before teleport()")
        pose = self.locator.pose_at(s_m, lateral_offset_m, heading_error_rad)
        road_kappa = self.locator.point_at(s_m).curvature_1pm
        self.vehicle.teleport(pose, road_kappa)
        self._commanded_1pm = road_kappa
        self._progress.rebase(self.locator.locate(pose).s_m)
        return self._observe()

    def close(self) -> None:
        """Release the renderer; safe to call twice."""
        if self._renderer is not None and hasattr(self._renderer, "close"):
            self._renderer.close()
        self._renderer = None
        self._closed = True

    def __enter__(self) -> EmbeddedSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the simulator is closed")

    def _observe(self) -> tuple[Observation, dict[str, Any]]:
        assert self._progress is not None
        cfg, st = self.config, self.vehicle.state
        pose = st.pose
        lane = self.locator.locate(pose)
        progress = self._progress.update(lane.s_m)
        laps = self._progress.laps
        time_s = self.vehicle.time_s
        truncated = (cfg.max_time_s is not None and time_s >= cfg.max_time_s - 1e-9) or (
            cfg.max_laps is not None and laps >= cfg.max_laps
        )
        image = self._renderer.render(pose) if self._renderer is not None else self._black
        info = {
            "lateral_offset_m": lane.lateral_offset_m,
            "heading_error_rad": lane.heading_error_rad,
            "progress_m": progress,
            "on_road": on_road(lane.lateral_offset_m, self.track, 0.5 * cfg.vehicle.width_m),
            "collision": False,
            "expert_curvature_1pm": self.expert.curvature_1pm(pose, st.speed_mps, lane.s_m),
            "pose": pose,
            "s_m": lane.s_m,
            "lap": laps,
            "curvature_1pm": lane.curvature_1pm,
            "steer_rad": st.steer_rad,
            "speed_mps": st.speed_mps,
            "executed_curvature_1pm": self.vehicle.curvature_1pm,
            "commanded_curvature_1pm": self._commanded_1pm,
            "time_s": time_s,
            "truncated": bool(truncated),
            "episode_seed": self._episode_seed,
        }
        obs = Observation(image=image, speed_mps=st.speed_mps, timestamp_s=time_s, frame=self._frame)
        return obs, info
