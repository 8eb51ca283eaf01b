"""The pinhole camera model of the embedded simulator: configuration and projection of world points.

Camera frame: x right, y down, z forward (depth along the optical axis). The car's frame: forward along
its yaw, left, up. The camera sits `forward_m` ahead of the pose's reference point, `height_m` above the
ground, pitched down by `pitch_rad`, with no roll.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.types import Pose


@dataclass(frozen=True)
class CameraConfig:
    """A forward-looking pinhole camera mounted on the car (no roll).

    The defaults give a 78×200 view like the NCP paper's crop: the road ahead fills the lower part of the
    image and the horizon lies at about the top third (row 26 of 78).

    Attributes:
        width, height: image size, pixels.
        fov_deg: horizontal field of view, degrees (square pixels: the vertical one follows).
        height_m: camera height above the ground, m.
        pitch_rad: downward tilt of the optical axis, rad (positive looks down).
        forward_m: camera position ahead of the pose's reference point along the car's heading, m.
        near_m: near clipping plane, m (depth along the optical axis).
        far_m: view distance for the road and trees, m; the ground beyond fades into haze.
    """

    width: int = 200
    height: int = 78
    fov_deg: float = 70.0
    height_m: float = 1.4
    pitch_rad: float = 0.09
    forward_m: float = 1.2
    near_m: float = 0.3
    far_m: float = 120.0

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 8:
                raise ValueError(f"CameraConfig.{name} must be an int >= 8, got {value!r}")
        if not 10.0 <= self.fov_deg <= 160.0:
            raise ValueError(f"CameraConfig.fov_deg must be in [10, 160], got {self.fov_deg}")
        if self.height_m <= 0:
            raise ValueError(f"CameraConfig.height_m must be positive, got {self.height_m}")
        if not -1.2 <= self.pitch_rad <= 1.2:
            raise ValueError(f"CameraConfig.pitch_rad must be in [-1.2, 1.2], got {self.pitch_rad}")
        if not 0 < self.near_m < self.far_m:
            raise ValueError(f"CameraConfig needs 0 < near_m < far_m, got {self.near_m}, {self.far_m}")

    @property
    def focal_px(self) -> float:
        """Focal length in pixels (horizontal and vertical)."""
        return 0.5 * self.width / math.tan(math.radians(self.fov_deg) / 2)

    @property
    def centre_px(self) -> tuple[float, float]:
        """Principal point (u, v), pixels; pixel centres are at integer coordinates."""
        return 0.5 * (self.width - 1), 0.5 * (self.height - 1)

    @property
    def horizon_row(self) -> float:
        """Image row of the horizon (may lie outside the image), pixels."""
        return self.centre_px[1] - self.focal_px * math.tan(self.pitch_rad)

    @property
    def sky_rows(self) -> int:
        """Number of image rows (from the top) whose pixel centres look above the horizon."""
        return int(np.clip(math.floor(self.horizon_row) + 1, 0, self.height))

    def row_elevation_rad(self) -> np.ndarray:
        """(H,) elevation above the horizontal of each row's ray at the centre column, rad."""
        f, (_, cy) = self.focal_px, self.centre_px
        elevation_rad: np.ndarray = np.arctan((cy - np.arange(self.height)) / f) - self.pitch_rad
        return elevation_rad

    def ground_hits_m(self) -> tuple[np.ndarray, np.ndarray]:
        """Where each pixel's ray meets the ground, relative to the camera.

        Returns:
            (forward (H, W), left (H, W)) horizontal position of the hit, m; +inf forward (and 0 left)
            for rays at or above the horizon.
        """
        f, (cx, cy) = self.focal_px, self.centre_px
        xr = (np.arange(self.width) - cx) / f
        yr = (np.arange(self.height) - cy) / f
        cp, sp = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        down = sp + yr * cp  # downward component of the ray (x', y', 1) in the car frame
        hits = down > 1e-9
        t = np.where(hits, self.height_m / np.where(hits, down, 1.0), np.inf)
        forward = np.broadcast_to((t * (cp - yr * sp))[:, None], (self.height, self.width))
        left = np.where(hits[:, None], -t[:, None] * xr[None, :], 0.0)
        return np.array(forward), left

    def hidden_ground_depth_m(self) -> float:
        """Depth along the optical axis under which ground points project below the image's bottom edge
        (with a pixel to spare); inf when the camera sees no ground at all."""
        f, (_, cy) = self.focal_px, self.centre_px
        cp, sp = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        y_ray = (self.height + 0.5 - cy) / f
        down = sp + y_ray * cp
        if down <= 0:
            return math.inf
        forward = self.height_m / down * (cp - y_ray * sp)
        return forward * cp + self.height_m * sp


def camera_position_m(camera: CameraConfig, pose: Pose) -> tuple[float, float]:
    """World position (x, y) of the camera for a car pose, m."""
    return (
        pose.x_m + camera.forward_m * math.cos(pose.yaw_rad),
        pose.y_m + camera.forward_m * math.sin(pose.yaw_rad),
    )


def project_points(
    camera: CameraConfig, pose: Pose, points_xy_m: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project world points into the image.

    Args:
        camera: the camera.
        pose: the car's pose.
        points_xy_m: (N, 2) ground points (z = 0) or (N, 3) points with a height z, world frame, m.

    Returns:
        (u (N,), v (N,), valid (N,) bool): pixel coordinates (pixel centres at integers, may lie outside
        the image) and whether the point is in front of the near plane (u, v are NaN where not).
    """
    pts = np.asarray(points_xy_m, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] not in (2, 3):
        raise ValueError(f"points_xy_m must be (N, 2) or (N, 3), got {pts.shape}")
    x_cam, y_cam = camera_position_m(camera, pose)
    c, s = math.cos(pose.yaw_rad), math.sin(pose.yaw_rad)
    dx, dy = pts[:, 0] - x_cam, pts[:, 1] - y_cam
    z = pts[:, 2] if pts.shape[1] == 3 else 0.0
    xc, yc, zc = car_to_camera(camera, dx * c + dy * s, dy * c - dx * s, z)
    valid = zc >= camera.near_m
    f, (cx, cy) = camera.focal_px, camera.centre_px
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(valid, cx + f * xc / zc, np.nan)
        v = np.where(valid, cy + f * yc / zc, np.nan)
    return u, v, valid


def car_to_camera(
    camera: CameraConfig, forward: np.ndarray, left: np.ndarray, z: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Car-frame offsets from the camera (forward, left, height above ground) -> camera (x, y, z)."""
    cp, sp = math.cos(camera.pitch_rad), math.sin(camera.pitch_rad)
    up = np.asarray(z, dtype=np.float64) - camera.height_m
    return -left, -forward * sp - up * cp, forward * cp - up * sp
