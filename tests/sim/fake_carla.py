"""A fake CARLA server for tests: client, world, actors, sensors and settings, in-process.

What is faithful to CARLA 0.9.16 (the parts the backend relies on):
- value types are the real `carla` ones (Transform, Location, Vector3D, VehicleControl, WorldSettings,
  WeatherParameters, VehiclePhysicsControl, BoundingBox), and maps are real `carla.Map`s built from
  OpenDRIVE text (the recommended spawn points, a server-side thing, are added by a thin proxy);
- the frame is left-handed (x forward, y right, yaw clockwise in degrees, angular velocity in deg/s),
  `steer` positive turns right, wheel positions are world positions in centimetres;
- `world.get_settings()` returns a copy; `world.tick()` needs synchronous mode, advances one fixed step
  and returns the new frame id; `get_transform()` etc. read the state of the last tick (a zero
  transform for an actor spawned since);
- sensor data comes on another thread after the tick returns, a random few milliseconds late, so a
  client must wait for it; images of frames it did not wait for arrive late and out of order;
  camera images are BGRA buffers; collision and lane-invasion events carry frame ids;
- actors are destroyed explicitly; the world keeps a record (`destroyed`, `settings_history`).

Vehicle physics is a kinematic bicycle about the rear axle with a steering lag and simple pedals, which
is enough to close the loop. Faults are set on the server (they outlive map loads): `fail_on_tick` (an
exception from the n-th tick), `camera_silent` (a server that does not render), `camera_delay_s` and
`camera_echo_s` (late images, and stale copies arriving out of order), `obstacles` (to collide with).
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

carla = pytest.importorskip("carla")

MODEL3_WHEELS_M = ((1.35, -0.8), (1.35, 0.8), (-1.5, -0.8), (-1.5, 0.8))
"""Wheel positions of the fake vehicle in its own frame (x forward, y right), m: wheelbase 2.85 m."""
STEERING_CURVE = ((0.0, 1.0), (20.0, 0.9), (60.0, 0.8), (120.0, 0.7))
"""CARLA's default steering curve: (speed km/h, fraction of the maximum steering angle)."""


def copy_settings(s: Any) -> Any:
    """A copy of a `carla.WorldSettings` (it cannot be pickled or copied otherwise)."""
    out = carla.WorldSettings(
        synchronous_mode=s.synchronous_mode,
        no_rendering_mode=s.no_rendering_mode,
        fixed_delta_seconds=s.fixed_delta_seconds or 0.0,
    )
    out.fixed_delta_seconds = s.fixed_delta_seconds
    return out


class Streamer:
    """Delivers sensor data to callbacks on a background thread after a delay (CARLA's streaming)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Any, Any]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def send(self, callback: Any, data: Any, delay_s: float) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay_s, next(self._seq), callback, data))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                _, _, callback, data = heapq.heappop(self._heap)
            callback(data)


@dataclass
class FakeImage:
    frame: int
    timestamp: float
    width: int
    height: int
    raw_data: bytes
    fov: float = 70.0


@dataclass
class FakeCollisionEvent:
    frame: int
    actor: Any
    other_actor: Any
    normal_impulse: Any = field(default_factory=lambda: carla.Vector3D(1000.0, 0.0, 0.0))


@dataclass
class FakeLaneMarking:
    type: str = "Broken"


@dataclass
class FakeLaneInvasionEvent:
    frame: int
    actor: Any
    crossed_lane_markings: list


class FakeBlueprint:
    def __init__(self, bp_id: str, attributes: dict[str, str] | None = None) -> None:
        self.id = bp_id
        self.attributes = dict(attributes or {})

    def has_attribute(self, key: str) -> bool:
        return key in self.attributes

    def set_attribute(self, key: str, value: str) -> None:
        if key not in self.attributes:
            raise IndexError(f"blueprint {self.id} has no attribute {key}")
        if not isinstance(value, str):
            raise TypeError("blueprint attributes are strings")
        self.attributes[key] = value


class FakeBlueprintLibrary:
    IDS = {
        "vehicle.tesla.model3": {"role_name": "autopilot", "color": "255,0,0"},
        "vehicle.lincoln.mkz_2020": {"role_name": "autopilot"},
        "sensor.camera.rgb": {
            "image_size_x": "800",
            "image_size_y": "600",
            "fov": "90",
            "sensor_tick": "0.0",
        },
        "sensor.other.collision": {},
        "sensor.other.lane_invasion": {},
    }

    def find(self, bp_id: str) -> FakeBlueprint:
        if bp_id not in self.IDS:
            raise IndexError(f"blueprint {bp_id!r} not found")
        return FakeBlueprint(bp_id, self.IDS[bp_id])

    def filter(self, pattern: str) -> list[FakeBlueprint]:
        prefix = pattern.rstrip("*")
        return [self.find(i) for i in self.IDS if i.startswith(prefix)]


class FakeActor:
    _ids = itertools.count(100)

    def __init__(
        self, world: FakeWorld, blueprint: FakeBlueprint, transform: Any, parent: Any = None
    ) -> None:
        self.world = world
        self.id = next(self._ids)
        self.type_id = blueprint.id
        self.attributes = dict(blueprint.attributes)
        self.parent = parent
        self._transform = carla.Transform(transform.location, transform.rotation)
        self.is_alive = True
        self.in_snapshot = False  # the client knows an actor's state only from the tick after its spawn

    def get_transform(self) -> Any:
        self._check()
        if not self.in_snapshot:
            return carla.Transform()  # CARLA: not in the client's snapshot yet, a zero transform
        if self.parent is None:
            return carla.Transform(self._transform.location, self._transform.rotation)
        return self.parent.get_transform()  # sensors ride on the vehicle (their offset does not matter)

    def destroy(self) -> bool:
        self._check()
        self.is_alive = False
        self.world.destroyed.append(self)
        return True

    def _check(self) -> None:
        if not self.is_alive:
            raise RuntimeError(f"actor {self.id} ({self.type_id}) was destroyed")

    def __repr__(self) -> str:
        return f"FakeActor({self.id}, {self.type_id})"


class FakeVehicle(FakeActor):
    """Kinematic bicycle about the rear axle; the actor's origin is 1.5 m ahead of it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.control = carla.VehicleControl()
        self.speed_mps = 0.0
        self.steer_right_rad = 0.0
        self.yaw_rate_degps = 0.0
        self.controls: list[Any] = []
        self.bounding_box = carla.BoundingBox(carla.Location(0, 0, 0.75), carla.Vector3D(2.4, 0.95, 0.75))

    def get_physics_control(self) -> Any:
        t = self._transform  # a server call: the server knows where the car is
        wheels = []
        for x, y in MODEL3_WHEELS_M:
            loc = t.transform(carla.Location(x=x, y=y, z=0.35))  # world position ...
            pos = carla.Vector3D(loc.x * 100.0, loc.y * 100.0, loc.z * 100.0)  # ... in cm (0.9.x)
            wheels.append(carla.WheelPhysicsControl(max_steer_angle=70.0 if x > 0 else 0.0, position=pos))
        return carla.VehiclePhysicsControl(
            wheels=wheels, steering_curve=[carla.Vector2D(v, f) for v, f in STEERING_CURVE]
        )

    def apply_control(self, control: Any) -> None:
        self._check()
        self.control = control
        self.controls.append(control)

    def set_transform(self, transform: Any) -> None:
        self._check()
        self._transform = carla.Transform(transform.location, transform.rotation)

    def set_target_velocity(self, velocity: Any) -> None:
        self._check()
        fwd = self._transform.get_forward_vector()
        self.speed_mps = max(0.0, velocity.x * fwd.x + velocity.y * fwd.y + velocity.z * fwd.z)

    def set_target_angular_velocity(self, angular_velocity: Any) -> None:
        self._check()
        self.yaw_rate_degps = float(angular_velocity.z)

    def get_velocity(self) -> Any:
        if not self.in_snapshot:
            return carla.Vector3D()
        fwd = self.get_transform().get_forward_vector()
        return carla.Vector3D(fwd.x * self.speed_mps, fwd.y * self.speed_mps, fwd.z * self.speed_mps)

    def get_angular_velocity(self) -> Any:
        return carla.Vector3D(0.0, 0.0, self.yaw_rate_degps)

    def physics_step(self, dt: float) -> None:
        c = self.control
        v = self.speed_mps
        factor = float(np.interp(v * 3.6, *zip(*STEERING_CURVE)))
        target = max(-1.0, min(1.0, c.steer)) * math.radians(70.0) * factor
        self.steer_right_rad += (target - self.steer_right_rad) * min(1.0, dt / 0.05)  # 50 ms lag
        accel = 4.0 * c.throttle - 8.0 * c.brake - (0.2 + 4e-4 * v * v if v > 0 else 0.0)
        v_new = max(0.0, v + accel * dt)
        dist = 0.5 * (v + v_new) * dt
        wheelbase = MODEL3_WHEELS_M[0][0] - MODEL3_WHEELS_M[2][0]
        dyaw = dist * math.tan(self.steer_right_rad) / wheelbase  # carla yaw: clockwise positive
        t = self._transform
        yaw0 = math.radians(t.rotation.yaw)
        rear_x = MODEL3_WHEELS_M[2][0]
        rx, ry = t.location.x + rear_x * math.cos(yaw0), t.location.y + rear_x * math.sin(yaw0)
        mid = yaw0 + 0.5 * dyaw
        rx, ry = rx + dist * math.cos(mid), ry + dist * math.sin(mid)
        yaw1 = yaw0 + dyaw
        ox, oy = rx - rear_x * math.cos(yaw1), ry - rear_x * math.sin(yaw1)
        self._transform = carla.Transform(
            carla.Location(ox, oy, t.location.z), carla.Rotation(yaw=math.degrees(yaw1))
        )
        self.speed_mps = v_new
        self.yaw_rate_degps = math.degrees(dyaw / dt)


class FakeSensor(FakeActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.callback: Any = None

    @property
    def is_listening(self) -> bool:
        return self.callback is not None

    def listen(self, callback: Any) -> None:
        self._check()
        self.callback = callback

    def stop(self) -> None:
        self.callback = None


class FakeMap:
    """A real `carla.Map` plus the server's recommended spawn points (one every 40 m of driving lane)."""

    def __init__(self, name: str, xodr: str) -> None:
        self._map = carla.Map(name, xodr)
        self.xodr = xodr
        points = [w for w in self._map.generate_waypoints(40.0) if w.lane_type == carla.LaneType.Driving]
        points.sort(key=lambda w: (w.road_id, w.lane_id, w.s))
        self._spawn_points = [
            carla.Transform(
                carla.Location(w.transform.location.x, w.transform.location.y, w.transform.location.z + 0.3),
                w.transform.rotation,
            )
            for w in points
        ]

    def get_spawn_points(self) -> list:
        return list(self._spawn_points)

    def to_opendrive(self) -> str:
        return self.xodr

    def __getattr__(self, name: str) -> Any:
        return getattr(self._map, name)


class FakeWorld:
    """The world of a fake server: map, settings, weather, actors, frames and sensor streaming."""

    def __init__(self, server: FakeServer, carla_map: FakeMap) -> None:
        self.server = server
        self.map = carla_map
        self.settings = carla.WorldSettings()
        self.settings_history: list[Any] = [copy_settings(self.settings)]
        self.weather = carla.WeatherParameters.Default
        self.frame = 1000
        self.actors: list[FakeActor] = []
        self.destroyed: list[FakeActor] = []
        self.ticks = 0
        self._rng = np.random.default_rng(0)
        self._last_offset: dict[int, float] = {}

    # settings and state
    def get_map(self) -> FakeMap:
        return self.map

    def get_settings(self) -> Any:
        return copy_settings(self.settings)

    def apply_settings(self, settings: Any) -> int:
        self.settings = copy_settings(settings)
        self.settings_history.append(copy_settings(settings))
        return self.frame

    def set_weather(self, weather: Any) -> None:
        self.weather = weather

    def get_weather(self) -> Any:
        return self.weather

    def get_blueprint_library(self) -> FakeBlueprintLibrary:
        return FakeBlueprintLibrary()

    def alive(self) -> list[FakeActor]:
        return [a for a in self.actors if a.is_alive]

    # actors
    def try_spawn_actor(self, blueprint: FakeBlueprint, transform: Any, attach_to: Any = None) -> Any:
        cls = FakeVehicle if blueprint.id.startswith("vehicle.") else FakeSensor
        actor = cls(self, blueprint, transform, parent=attach_to)
        self.actors.append(actor)
        return actor

    def spawn_actor(self, blueprint: FakeBlueprint, transform: Any, attach_to: Any = None) -> Any:
        return self.try_spawn_actor(blueprint, transform, attach_to)

    # time
    def tick(self, seconds: float = 10.0) -> int:
        if not self.settings.synchronous_mode:
            raise RuntimeError("tick() in asynchronous mode: the fake insists on synchronous mode")
        self.ticks += 1
        srv = self.server
        if srv.fail_on_tick is not None and self.ticks >= srv.fail_on_tick:
            raise srv.fail_with(f"injected failure on tick {self.ticks}")
        dt = self.settings.fixed_delta_seconds
        self.frame += 1
        for actor in self.alive():
            if isinstance(actor, FakeVehicle):
                actor.physics_step(dt)
            actor.in_snapshot = True
        for sensor in [a for a in self.alive() if isinstance(a, FakeSensor) and a.is_listening]:
            self._sense(sensor)
        return self.frame

    def _sense(self, sensor: FakeSensor) -> None:
        vehicle = sensor.parent
        if sensor.type_id == "sensor.camera.rgb":
            if self.server.camera_silent:
                return
            w, h = int(sensor.attributes["image_size_x"]), int(sensor.attributes["image_size_y"])
            bgra = np.empty((h, w, 4), np.uint8)
            bgra[:] = (10, 20, 30, 255)  # B, G, R, A: RGB (30, 20, 10) after conversion
            bgra[0, :, 0] = self.frame % 256  # the frame id, readable from the image
            image = FakeImage(self.frame, self.frame * 0.05, w, h, bgra.tobytes())
            self.server.streamer.send(
                sensor.callback, image, float(self._rng.uniform(*self.server.camera_delay_s))
            )
            if self.server.camera_echo_s is not None:
                self.server.streamer.send(sensor.callback, image, self.server.camera_echo_s)
        elif sensor.type_id == "sensor.other.collision":
            loc = vehicle.get_transform().location
            for x, y, radius in self.server.obstacles:
                if math.hypot(loc.x - x, loc.y - y) < radius:
                    event = FakeCollisionEvent(self.frame, vehicle, "static.prop")
                    self.server.streamer.send(sensor.callback, event, 0.001)
        elif sensor.type_id == "sensor.other.lane_invasion":
            t = vehicle.get_transform()
            wp = self.map.get_waypoint(t.location)
            rv = wp.transform.get_right_vector()
            d = wp.transform.location
            offset = (t.location.x - d.x) * rv.x + (t.location.y - d.y) * rv.y
            prev = self._last_offset.get(sensor.id, offset)
            half = 0.5 * wp.lane_width
            if (abs(prev) <= half) != (abs(offset) <= half):
                event = FakeLaneInvasionEvent(self.frame, vehicle, [FakeLaneMarking()])
                self.server.streamer.send(sensor.callback, event, 0.001)
            self._last_offset[sensor.id] = offset


class FakeServer:
    """The server side: its maps by name, the current world, and the streaming thread."""

    VERSION = "0.9.16"

    def __init__(self, maps: dict[str, str], current: str) -> None:
        # Faults and scenery, kept across map loads.
        self.fail_on_tick: int | None = None  # the n-th tick of a world raises `fail_with`
        self.fail_with: type[BaseException] = RuntimeError
        self.camera_silent = False
        self.camera_delay_s = (0.0, 0.01)
        self.camera_echo_s: float | None = None  # also re-send every image this late (stale, out of order)
        self.obstacles: list[tuple[float, float, float]] = []  # (carla x, carla y, radius m)
        self.maps = dict(maps)
        self.streamer = Streamer()
        self.loads: list[str] = []
        self.world = FakeWorld(self, FakeMap(current, self.maps[current]))

    def load(self, name: str, xodr: str | None = None) -> FakeWorld:
        self.loads.append(name)
        if xodr is not None:
            self.maps[name] = xodr
        self.world = FakeWorld(self, FakeMap(name, self.maps[name]))
        return self.world


class FakeClient:
    """`carla.Client` against a `FakeServer`."""

    def __init__(self, server: FakeServer, host: str = "127.0.0.1", port: int = 2000) -> None:
        self.server = server
        self.host, self.port = host, port
        self.timeouts: list[float] = []

    def set_timeout(self, seconds: float) -> None:
        self.timeouts.append(float(seconds))

    def get_server_version(self) -> str:
        return self.server.VERSION

    def get_client_version(self) -> str:
        return carla.Client("127.0.0.1", 1).get_client_version()

    def get_available_maps(self) -> list[str]:
        return [f"/Game/Carla/Maps/{name}" for name in self.server.maps if name.startswith("Town")]

    def get_world(self) -> FakeWorld:
        return self.server.world

    def load_world(self, name: str, reset_settings: bool = True) -> FakeWorld:
        return self.server.load(name.rsplit("/", 1)[-1])

    def generate_opendrive_world(
        self, xodr: str, parameters: Any = None, reset_settings: bool = True
    ) -> FakeWorld:
        if not isinstance(parameters, carla.OpendriveGenerationParameters):
            raise TypeError("generate_opendrive_world needs carla.OpendriveGenerationParameters")
        return self.server.load("OpenDriveMap", xodr)
