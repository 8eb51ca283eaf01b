"""Actors of the fake CARLA server (tests/sim/fake_carla.py): blueprints, vehicles, sensors, sensor data.

The vehicle is a kinematic bicycle about the rear axle with a steering lag and simple pedals, in CARLA's
left-handed frame (x forward, y right, yaw clockwise in degrees); sensors only keep their callback, which
the world (fake_carla.FakeWorld) feeds with the data types defined here.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

carla = pytest.importorskip("carla")

if TYPE_CHECKING:
    from tests.sim.fake_carla import FakeWorld

MODEL3_WHEELS_M = ((1.35, -0.8), (1.35, 0.8), (-1.5, -0.8), (-1.5, 0.8))
"""Wheel positions of the fake vehicle in its own frame (x forward, y right), m: wheelbase 2.85 m."""
STEERING_CURVE = ((0.0, 1.0), (20.0, 0.9), (60.0, 0.8), (120.0, 0.7))
"""CARLA's default steering curve: (speed km/h, fraction of the maximum steering angle)."""


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
