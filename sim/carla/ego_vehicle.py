"""The CARLA ego vehicle's adapter: geometry from its physics, curvature → steer, speed PID → pedals.

A curvature command κ (left positive, 1/m) becomes the road-wheel angle of the bicycle model,
δ = atan(L·κ), with the wheelbase L measured from the wheel positions of the vehicle's physics control;
CARLA's `steer` ∈ [-1, 1] scales the front wheels' maximum steering angle, which the physics further
scales by the steering curve at the current speed, so steer = -δ / (δ_max·curve(v)) (negative: CARLA's
steer is right positive), clipped. The rear-axle centre is the reference point of poses (as in the
embedded simulator): its path curvature is the commanded one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.carla.config import SpeedControlConfig

_WHEEL_UNITS = (0.01, 1.0, 0.001)
"""Candidate scales of `WheelPhysicsControl.position` to metres: 0.9.x reports world positions in cm."""


@dataclass(frozen=True)
class VehicleGeometry:
    """What the controllers need to know about the ego vehicle.

    Attributes:
        wheelbase_m: distance between the front and rear axle centres, m.
        rear_axle_x_m: position of the rear axle centre along the car from the actor's origin, m
            (negative: behind it).
        max_steer_rad: the front wheels' steering angle at steer = 1, rad.
        steer_speeds_mps, steer_factors: the steering curve, (K,) each: the fraction of `max_steer_rad`
            available at each forward speed.
        half_width_m: half the body width, m.
    """

    wheelbase_m: float
    rear_axle_x_m: float
    max_steer_rad: float
    steer_speeds_mps: tuple[float, ...] = (0.0,)
    steer_factors: tuple[float, ...] = (1.0,)
    half_width_m: float = 0.9

    def max_steer_at(self, speed_mps: float) -> float:
        """Largest road-wheel angle the physics gives at `speed_mps`, rad."""
        factor = float(np.interp(abs(speed_mps), self.steer_speeds_mps, self.steer_factors))
        return self.max_steer_rad * factor

    def steer_command(self, curvature_1pm: float, speed_mps: float) -> float:
        """CARLA `steer` (right positive, [-1, 1]) for a path curvature (left positive, 1/m)."""
        angle = math.atan(self.wheelbase_m * curvature_1pm)
        return -min(max(angle / self.max_steer_at(speed_mps), -1.0), 1.0)

    def steer_angle_rad(self, steer: float, speed_mps: float) -> float:
        """Road-wheel angle (left positive, rad) of a CARLA `steer` value."""
        return -steer * self.max_steer_at(speed_mps)


def vehicle_geometry(vehicle: Any) -> VehicleGeometry:
    """Measure an actor's wheelbase, rear axle, steering limit and steering curve from its physics.

    Wheels 0, 1 are the front (left, right) and 2, 3 the rear ones (CARLA's order). Their positions are
    world positions; in 0.9.x they are in centimetres, so the scale is taken as the one that puts every
    wheel within 4 m of the actor (robust to a future release that reports metres).

    Raises:
        ValueError: not a four-wheeled vehicle, or wheel positions that fit no scale.
    """
    physics = vehicle.get_physics_control()
    wheels = list(physics.wheels)
    if len(wheels) != 4:
        raise ValueError(f"{vehicle.type_id}: expected a four-wheeled vehicle, got {len(wheels)} wheels")
    transform = vehicle.get_transform()
    origin = np.array([transform.location.x, transform.location.y, transform.location.z])
    raw = np.array([[w.position.x, w.position.y, w.position.z] for w in wheels], dtype=np.float64)
    for scale in _WHEEL_UNITS:
        world = raw * scale
        if np.all(np.linalg.norm(world - origin, axis=1) < 4.0):
            break
    else:
        raise ValueError(
            f"{vehicle.type_id}: wheel positions {raw.tolist()} are not near the actor ({origin})"
        )
    forward = transform.get_forward_vector()
    fwd = np.array([forward.x, forward.y, forward.z])
    along = (world - origin) @ fwd
    front_x, rear_x = along[:2].mean(), along[2:].mean()
    wheelbase = float(front_x - rear_x)
    if not 0.5 < wheelbase < 10.0:
        raise ValueError(f"{vehicle.type_id}: implausible wheelbase {wheelbase:.3f} m from wheel positions")
    max_steer = math.radians(float(np.mean([wheels[0].max_steer_angle, wheels[1].max_steer_angle])))
    curve = [(float(p.x) / 3.6, float(p.y)) for p in physics.steering_curve] or [(0.0, 1.0)]
    curve.sort()
    extent = vehicle.bounding_box.extent
    return VehicleGeometry(
        wheelbase_m=wheelbase,
        rear_axle_x_m=float(rear_x),
        max_steer_rad=max_steer,
        steer_speeds_mps=tuple(v for v, _ in curve),  # the curve's speeds are km/h
        steer_factors=tuple(f for _, f in curve),
        half_width_m=float(extent.y),
    )


class SpeedController:
    """PID on the speed error; a positive output is throttle, a negative one brake.

    Anti-windup: the integral does not grow while the output is saturated in the error's direction.

    Args:
        config: gains and pedal limits.
        dt_s: control period, s.
    """

    def __init__(self, config: SpeedControlConfig, dt_s: float) -> None:
        self.config = config
        self.dt_s = dt_s
        self.reset()

    def reset(self, speed_mps: float = 0.0) -> None:
        """Clear the integral; `speed_mps` is the current speed (for the derivative)."""
        self._integral = 0.0
        self._last_speed_mps = speed_mps

    def pedals(self, target_mps: float, speed_mps: float) -> tuple[float, float]:
        """(throttle, brake), each in [0, 1], for one control period."""
        cfg = self.config
        err = target_mps - speed_mps
        accel = (speed_mps - self._last_speed_mps) / self.dt_s
        self._last_speed_mps = speed_mps
        integral = self._integral + err * self.dt_s
        u = cfg.kp * err + cfg.ki * integral - cfg.kd * accel
        u_sat = min(max(u, -cfg.max_brake), cfg.max_throttle)
        if u == u_sat or (u > u_sat) != (err > 0):
            self._integral = integral
        if target_mps <= 0.0 and speed_mps < 0.1:
            return 0.0, cfg.max_brake  # hold the car still
        return (u_sat, 0.0) if u_sat >= 0 else (0.0, -u_sat)
