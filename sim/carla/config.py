"""Configuration of a CARLA run (`CarlaConfig`): server, map, vehicle, camera, controllers.

Plain dataclasses without carla: a record or eval config holds a `carla:` section and loads on machines
without the carla extra. The same field names as the embedded simulator's config where the meaning is
the same (`track`, `condition`, `dt_ctrl_s`, `target_speed_mps`, `start_s_m`, `max_time_s`, `max_laps`),
so `dataclasses.replace(config, track=..., condition=...)` works for both backends.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from sim.conditions import CONDITIONS
from sim.expert import ExpertConfig
from sim.tracks.track_gen import validate_track_name
from sim.types import DT_CTRL_S

TOWN_PATTERN = re.compile(r"(/Game/.+/)?Town\d+\w*")
"""CARLA map names (`Town01`, `Town10HD_Opt`, or a full `/Game/Carla/Maps/Town01` path)."""


@dataclass(frozen=True)
class CarlaCameraConfig:
    """The forward RGB camera (`sensor.camera.rgb`), mounted like the embedded simulator's camera.

    Attributes:
        width, height: image size, pixels (the defaults give the embedded camera's 200×78 view).
        fov_deg: horizontal field of view, degrees.
        height_m: height of the camera above the vehicle's origin (CARLA puts it at the ground), m.
        pitch_rad: downward tilt, rad (positive looks down).
        forward_m: position ahead of the rear axle along the car, m.
    """

    width: int = 200
    height: int = 78
    fov_deg: float = 70.0
    height_m: float = 1.4
    pitch_rad: float = 0.09
    forward_m: float = 1.2

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 8:
                raise ValueError(f"CarlaCameraConfig.{name} must be an int >= 8, got {value!r}")
        if not 10.0 <= self.fov_deg <= 160.0:
            raise ValueError(f"CarlaCameraConfig.fov_deg must be in [10, 160], got {self.fov_deg}")
        if not -1.2 <= self.pitch_rad <= 1.2:
            raise ValueError(f"CarlaCameraConfig.pitch_rad must be in [-1.2, 1.2], got {self.pitch_rad}")


@dataclass(frozen=True)
class SpeedControlConfig:
    """The longitudinal PID: speed error → throttle (positive output) or brake (negative output).

    Attributes:
        kp: proportional gain, 1/(m/s).
        ki: integral gain, 1/m.
        kd: derivative gain on the measured speed, s/m.
        max_throttle: throttle ceiling in [0, 1].
        max_brake: brake ceiling in [0, 1].
    """

    kp: float = 0.5
    ki: float = 0.1
    kd: float = 0.0
    max_throttle: float = 0.8
    max_brake: float = 0.8

    def __post_init__(self) -> None:
        for name in ("kp", "ki", "kd"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"SpeedControlConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_throttle", "max_brake"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"SpeedControlConfig.{name} must be in (0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class CarlaConfig:
    """Everything that defines a CARLA run (saved beside every artifact).

    Attributes:
        host: the CARLA server's address.
        port: its RPC port (2000 by default; a second server on 2002, ...).
        timeout_s: RPC timeout, s; with no server, connecting fails after this long.
        load_timeout_s: RPC timeout while a map loads or an OpenDRIVE world is built, s.
        track: what to drive on: a CARLA town (`Town01`, ...: the route is a closed loop of its lanes
            from `spawn_point`), an embedded track name (`country`, `seed-3`: the same road, built from its
            OpenDRIVE export with `generate_opendrive_world`), or a path to an `.xodr` file.
        condition: weather preset, one of `sim.conditions.CONDITIONS` (`sim.carla.weather`).
        vehicle: the ego vehicle's blueprint id.
        camera: the RGB camera.
        expert: the pure-pursuit expert's parameters (it follows the route's lane centre).
        speed: the longitudinal PID.
        dt_ctrl_s: control period = CARLA's fixed simulation step, s (20 Hz).
        target_speed_mps: default speed set-point, m/s (~8 m/s for CARLA runs).
        start_speed_mps: speed at reset, m/s; None starts at `target_speed_mps`.
        start_s_m: arc length of the start along the route, m; None draws it from the reset seed.
        spawn_point: index into the town's recommended spawn points: the route starts on its lane
            (ignored for embedded tracks, whose route starts at the track's s = 0).
        shoulder_m: paved margin beside the route's lane counted as road by `on_road` in towns, m
            (embedded tracks keep their own shoulder).
        max_time_s: episode time after which `info["truncated"]` is True, s; None: never.
        max_laps: completed laps of the route after which `info["truncated"]` is True; None: never.
        sensor_timeout_s: how long a step waits for the camera image of its frame, s.
        teleport_keeps_speed: the safety driver's teleport keeps the car's speed (as the embedded
            simulator does); False leaves it standing.
        spawn_lift_m: spawn and teleport this far above the road, so the car never starts inside it, m.
        servers: a pool of servers as "host:port" for evaluations with several workers: each worker holds
            exactly one of them (CARLA takes one synchronous client per server); empty: `host:port` only.
    """

    host: str = "127.0.0.1"
    port: int = 2000
    timeout_s: float = 10.0
    load_timeout_s: float = 120.0
    track: str = "Town01"
    condition: str = "summer"
    vehicle: str = "vehicle.tesla.model3"
    camera: CarlaCameraConfig = field(default_factory=CarlaCameraConfig)
    expert: ExpertConfig = field(default_factory=ExpertConfig)
    speed: SpeedControlConfig = field(default_factory=SpeedControlConfig)
    dt_ctrl_s: float = DT_CTRL_S
    target_speed_mps: float = 8.0
    start_speed_mps: float | None = None
    start_s_m: float | None = None
    spawn_point: int = 0
    shoulder_m: float = 0.5
    max_time_s: float | None = None
    max_laps: int | None = None
    sensor_timeout_s: float = 2.0
    teleport_keeps_speed: bool = True
    spawn_lift_m: float = 0.3
    servers: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        addresses = [parse_server(text) for text in self.servers]  # raises on a malformed entry, named
        if len(set(addresses)) != len(addresses):
            raise ValueError(f"CarlaConfig.servers: repeated server in {self.servers}")
        if not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ValueError(f"CarlaConfig.port must be an int in [1, 65535], got {self.port!r}")
        for name in ("timeout_s", "load_timeout_s", "dt_ctrl_s", "sensor_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"CarlaConfig.{name} must be > 0, got {value!r}")
        track_kind(self.track)  # raises on a name that is none of the three kinds
        if self.condition not in CONDITIONS:
            raise ValueError(f"unknown condition {self.condition!r}; valid: {', '.join(CONDITIONS)}")
        if not self.vehicle.startswith("vehicle."):
            raise ValueError(f"CarlaConfig.vehicle must be a vehicle blueprint id, got {self.vehicle!r}")
        if not self.target_speed_mps >= 0:
            raise ValueError(f"CarlaConfig.target_speed_mps must be >= 0, got {self.target_speed_mps}")
        if self.start_speed_mps is not None and not self.start_speed_mps >= 0:
            raise ValueError(f"CarlaConfig.start_speed_mps must be >= 0 or None, got {self.start_speed_mps}")
        if self.spawn_point < 0:
            raise ValueError(f"CarlaConfig.spawn_point must be >= 0, got {self.spawn_point}")
        if not self.shoulder_m >= 0 or not self.spawn_lift_m >= 0:
            raise ValueError("CarlaConfig.shoulder_m and spawn_lift_m must be >= 0")
        if self.max_time_s is not None and not self.max_time_s > 0:
            raise ValueError(f"CarlaConfig.max_time_s must be > 0 or None, got {self.max_time_s}")
        if self.max_laps is not None and not self.max_laps >= 1:
            raise ValueError(f"CarlaConfig.max_laps must be >= 1 or None, got {self.max_laps}")


def parse_server(text: str) -> tuple[str, int]:
    """("host", port) of a "host:port" server address.

    Raises:
        ValueError: not host:port with a port in [1, 65535]; names the entry.
    """
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"CarlaConfig.servers: {text!r} is not host:port (e.g. 127.0.0.1:2000)")
    return host, int(port)


def server_pool(config: CarlaConfig) -> list[tuple[str, int]]:
    """The servers an evaluation may use: `servers`, or the one at `host:port`."""
    return [parse_server(s) for s in config.servers] or [(config.host, config.port)]


def track_kind(track: str) -> str:
    """What `CarlaConfig.track` names: "town", "embedded" or "xodr".

    Raises:
        ValueError: none of the three; the message lists what is accepted.
    """
    if not isinstance(track, str) or not track:
        raise ValueError(f"CarlaConfig.track must be a non-empty string, got {track!r}")
    if track.lower().endswith(".xodr"):
        return "xodr"
    if TOWN_PATTERN.fullmatch(track):
        return "town"
    try:
        validate_track_name(track)
    except ValueError:
        raise ValueError(
            f"CarlaConfig.track {track!r} is neither a CARLA town (Town01, Town10HD_Opt, ...), an embedded "
            "track (oval, country, forest, hills, seed-<n>) nor a path to an .xodr file"
        ) from None
    return "embedded"
