"""The backend's edge between CARLA's frame and ours, in one place.

CARLA (Unreal) is left-handed: x forward/east, y right/south, z up, yaw clockwise seen from above, in
degrees; angular velocities in deg/s; `VehicleControl.steer` positive turns right. Ours
(docs/conventions.md) is right-handed with left positive: x east, y north, yaw counter-clockwise in
radians, curvature and steering positive to the left. So, at the edge and nowhere else:

    our_x = carla_x,   our_y = -carla_y,   our_yaw = -radians(carla_yaw),   our_steer = -carla_steer.

OpenDRIVE files are right-handed like ours; CARLA flips y when it loads one, so a point (x, y) of an
exported embedded track is at carla (x, -y).

The functions read CARLA objects by attribute only (`.location.x`, `.rotation.yaw`), so they accept
carla's own value types or look-alikes; `carla_transform` builds a real `carla.Transform`.
"""

from __future__ import annotations

import math
from typing import Any

from sim.carla.lazy_import import import_carla
from sim.tracks.geometry import wrap_angle
from sim.types import Pose


def yaw_from_carla(yaw_deg: float) -> float:
    """Our yaw (counter-clockwise, rad, wrapped to [-π, π)) from a CARLA yaw (clockwise, degrees)."""
    return wrap_angle(-math.radians(yaw_deg))


def yaw_to_carla(yaw_rad: float) -> float:
    """CARLA yaw (clockwise, degrees) from our yaw (counter-clockwise, rad)."""
    return -math.degrees(yaw_rad)


def pose_from_carla(transform: Any) -> Pose:
    """Our planar pose of a CARLA transform (its location and yaw; z, pitch and roll dropped)."""
    loc = transform.location
    return Pose(float(loc.x), -float(loc.y), yaw_from_carla(float(transform.rotation.yaw)))


def xy_from_carla(location: Any) -> tuple[float, float]:
    """Our (x, y) of a CARLA location or vector, m."""
    return float(location.x), -float(location.y)


def yaw_rate_from_carla(angular_velocity: Any) -> float:
    """Our yaw rate (counter-clockwise, rad/s) from a CARLA angular velocity vector (deg/s)."""
    return -math.radians(float(angular_velocity.z))


def steer_to_carla(steer_left: float) -> float:
    """CARLA `VehicleControl.steer` (right positive) from a normalised steer command (left positive)."""
    return -steer_left


def carla_transform(pose: Pose, z_m: float = 0.0, pitch_rad: float = 0.0) -> Any:
    """A `carla.Transform` at our planar `pose`, `z_m` high, pitched up by `pitch_rad` (no roll)."""
    carla = import_carla()
    return carla.Transform(
        carla.Location(x=float(pose.x_m), y=-float(pose.y_m), z=float(z_m)),
        carla.Rotation(pitch=math.degrees(pitch_rad), yaw=yaw_to_carla(pose.yaw_rad), roll=0.0),
    )


def carla_vector(x: float, y: float, z: float = 0.0) -> Any:
    """A `carla.Vector3D` for our (x, y, z) vector."""
    carla = import_carla()
    return carla.Vector3D(x=float(x), y=-float(y), z=float(z))
