"""The virtual safety driver: takes over when the policy drives badly, and counts every takeover.

Triggers (any of): |lateral offset| > `max_offset_m` (1.0 m, as PilotNet's evaluation), |heading error|
> `max_heading_error_rad` (30°), off the road, a collision, or stuck (slower than `stuck_speed_mps` for
`stuck_time_s`). Responses, both in simulation time:

- `teleport`: the car is put back on the lane centre at the same place along the route, heading along
  the lane (the NCP paper: "every manual intervention that brings the car back onto the road counts as
  one crash"), then the expert drives for `cooldown_s` before the policy is re-engaged;
- `takeover`: the expert drives from where the car is for `takeover_s`, then re-engages.

While the safety driver is in control the policy's command is replaced by the expert's and no trigger
fires. One log row per intervention. The wrapper must sit directly on the simulator, inside any
perturbation wrappers, so the observation after a teleport is perturbed like any other.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, cast

from sim.types import Command, Observation, Simulator
from sim.wrapper import ObservationWrapper, SimulatorWrapper

CAUSES = ("offset", "heading", "off_road", "collision", "stuck")


@dataclass(frozen=True)
class SafetyDriverConfig:
    """When and how the safety driver intervenes.

    Attributes:
        max_offset_m: lateral-offset trigger, m.
        max_heading_error_rad: heading-error trigger, rad (30°).
        trigger_off_road: intervene when the car leaves the road surface.
        trigger_collision: intervene on a collision.
        stuck_speed_mps: below this speed the car counts as stopped, m/s.
        stuck_time_s: stopped this long triggers an intervention, s.
        response: "teleport" (back to the lane centre, then `cooldown_s` of expert driving) or
            "takeover" (the expert drives `takeover_s` from where the car is).
        cooldown_s: expert driving after a teleport before the policy is re-engaged, s.
        takeover_s: expert driving on a takeover, s.
    """

    max_offset_m: float = 1.0
    max_heading_error_rad: float = math.radians(30.0)
    trigger_off_road: bool = True
    trigger_collision: bool = True
    stuck_speed_mps: float = 0.5
    stuck_time_s: float = 3.0
    response: Literal["teleport", "takeover"] = "teleport"
    cooldown_s: float = 1.0
    takeover_s: float = 3.0

    def __post_init__(self) -> None:
        if self.response not in ("teleport", "takeover"):
            raise ValueError(f"response must be 'teleport' or 'takeover', got {self.response!r}")
        for name in ("max_offset_m", "max_heading_error_rad", "stuck_time_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("cooldown_s", "takeover_s", "stuck_speed_mps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Intervention:
    """One takeover: where, when and why."""

    frame: int
    time_s: float
    cause: str
    lateral_offset_m: float
    heading_error_rad: float
    progress_m: float
    context: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        return {**{k: v for k, v in row.items() if k != "context"}, **self.context}


class _Teleporting(Protocol):
    """A simulator that can put the car back on the lane (the embedded and CARLA simulators can)."""

    def teleport(
        self, s_m: float, lateral_offset_m: float = 0.0, heading_error_rad: float = 0.0
    ) -> tuple[Observation, dict[str, Any]]: ...


class SafetyDriver(SimulatorWrapper):
    """Watches the privileged info and takes over when a trigger fires.

    Adds to `info`: `intervention` (a trigger fired on this step), `autonomous` (the policy's command
    was executed on this step), `interventions` (count so far).

    Args:
        sim: the simulator itself (not a perturbation wrapper); must offer `teleport(s_m, …)` for the
            teleport response.
        config: triggers and response.
        context: values copied into every log row (e.g. `{"noise_variance": 0.1}`).
    """

    def __init__(
        self, sim: Simulator, config: SafetyDriverConfig | None = None, context: dict[str, Any] | None = None
    ) -> None:
        if isinstance(sim, ObservationWrapper):
            raise ValueError(
                "SafetyDriver must wrap the simulator directly; put perturbation wrappers outside it"
            )
        super().__init__(sim)
        self.config = config or SafetyDriverConfig()
        if self.config.response == "teleport" and not callable(getattr(sim, "teleport", None)):
            raise ValueError(f"{type(sim).__name__} has no teleport(); use response='takeover'")
        self.context = dict(context or {})
        self.log: list[Intervention] = []
        self._override_until_s = -math.inf
        self._stopped_since_s: float | None = None
        self._last_info: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        return {**super().params(), **asdict(self.config)}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        obs, info = self.sim.reset(seed=seed, options=options)
        self.log = []
        self._override_until_s = -math.inf
        self._stopped_since_s = None
        return obs, self._annotate(obs, info, fired=False, autonomous=True)

    def step(self, command: Command) -> tuple[Observation, dict[str, Any]]:
        # The command was computed from the last observation: the policy's if it was engaged then.
        autonomous = self._last_time_s >= self._override_until_s - 1e-9
        if not autonomous:
            command = Command(float(self._last_info["expert_curvature_1pm"]), command.target_speed_mps)
        obs, info = self.sim.step(command)
        fired = False
        if obs.timestamp_s >= self._override_until_s - 1e-9:
            cause = self._trigger(obs, info)
            if cause is not None:
                fired = True
                self.log.append(
                    Intervention(
                        frame=int(obs.frame),
                        time_s=float(obs.timestamp_s),
                        cause=cause,
                        lateral_offset_m=float(info["lateral_offset_m"]),
                        heading_error_rad=float(info["heading_error_rad"]),
                        progress_m=float(info["progress_m"]),
                        context=dict(self.context),
                    )
                )
                self._stopped_since_s = None
                if self.config.response == "teleport":
                    # `Simulator` has no teleport(); __init__ checked that this one has it.
                    obs, info = cast(_Teleporting, self.sim).teleport(info["s_m"], 0.0, 0.0)
                    self._override_until_s = obs.timestamp_s + self.config.cooldown_s
                else:
                    self._override_until_s = obs.timestamp_s + self.config.takeover_s
        return obs, self._annotate(obs, info, fired=fired, autonomous=autonomous)

    @property
    def _last_time_s(self) -> float:
        return float(self._last_info.get("time_s", -math.inf))

    def _annotate(
        self, obs: Observation, info: dict[str, Any], fired: bool, autonomous: bool
    ) -> dict[str, Any]:
        info = {**info, "intervention": fired, "autonomous": autonomous, "interventions": len(self.log)}
        info.setdefault("time_s", obs.timestamp_s)
        self._last_info = info
        return info

    def _trigger(self, obs: Observation, info: dict[str, Any]) -> str | None:
        cfg = self.config
        if abs(info["lateral_offset_m"]) > cfg.max_offset_m:
            return "offset"
        if abs(info["heading_error_rad"]) > cfg.max_heading_error_rad:
            return "heading"
        if cfg.trigger_off_road and not info["on_road"]:
            return "off_road"
        if cfg.trigger_collision and info["collision"]:
            return "collision"
        if obs.speed_mps < cfg.stuck_speed_mps:
            if self._stopped_since_s is None:
                self._stopped_since_s = obs.timestamp_s
            elif obs.timestamp_s - self._stopped_since_s >= cfg.stuck_time_s - 1e-9:
                return "stuck"
        else:
            self._stopped_since_s = None
        return None
