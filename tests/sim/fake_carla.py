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

The actors (blueprints, the vehicle model, sensors and their data) are in tests/sim/fake_carla_actors.py.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from typing import Any

import numpy as np
import pytest

carla = pytest.importorskip("carla")

from tests.sim.fake_carla_actors import (  # noqa: E402  (after the carla skip)
    FakeActor,
    FakeBlueprint,
    FakeBlueprintLibrary,
    FakeCollisionEvent,
    FakeImage,
    FakeLaneInvasionEvent,
    FakeLaneMarking,
    FakeSensor,
    FakeVehicle,
)


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
