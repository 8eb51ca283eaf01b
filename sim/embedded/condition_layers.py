"""Precomputed images of a condition for one camera, combined by the renderer with cheap uint8 operations.

For a camera, the distance of the ground seen by each pixel is fixed (its height and pitch do not change),
so the lighting of the ground can be precomputed: a multiplicative light mask (tint, headlights, 1 − haze)
and an additive haze layer. Also here: the 360° sky panorama (sliced by yaw each frame), the bare ground,
and the optional sun glare, wet-road sheen and precipitation overlays.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sim.conditions import Condition, haze_fraction, illumination, sun_azimuth_for_seed
from sim.embedded.pinhole import CameraConfig

LIGHT_SCALE = 128
"""The multiplicative light mask stores light × 128, so lights up to 2× (headlights nearby) fit a uint8."""


@dataclass(frozen=True)
class Layers:
    """A condition's precomputed images for one camera (H, W from the camera; uint8 RGB).

    Attributes:
        sky_rows: rows [0, sky_rows) look above the horizon; the rest see the ground.
        sky_pano: (sky_rows, P + W, 3) 360° sky; column p looks at azimuth -p / px_per_rad; the first W
            columns are repeated at the end so any yaw is one slice.
        px_per_rad: panorama columns per radian of azimuth (the camera's focal length in pixels).
        ground: (H - sky_rows, W, 3) bare ground colour.
        light_mult: (H - sky_rows, W, 3) light × LIGHT_SCALE on the ground (tint, headlights, 1 − haze).
        light_add: (H - sky_rows, W, 3) haze colour × haze fraction.
        glare_pano: (H, P + W, 3) additive sun glare, or None.
        sheen: (H - sky_rows, W, 3) additive wet-road reflection, or None.
        precipitation: (F, H, W, 3) additive rain or snow frames, or None.
    """

    sky_rows: int
    sky_pano: np.ndarray
    px_per_rad: float
    ground: np.ndarray
    light_mult: np.ndarray
    light_add: np.ndarray
    glare_pano: np.ndarray | None
    sheen: np.ndarray | None
    precipitation: np.ndarray | None


def build_layers(condition: Condition, camera: CameraConfig, seed: int) -> Layers:
    """Precompute the condition's sky, ground lighting and overlays for a camera.

    Args:
        condition: the condition.
        camera: the camera (size, focal length, height, pitch).
        seed: varies clouds, stars, the sun's azimuth and precipitation patterns.

    Returns:
        The layers; see `Layers`.
    """
    h, w = camera.height, camera.width
    sky_rows = camera.sky_rows
    fwd, left = camera.ground_hits_m()
    fwd, left = fwd[sky_rows:], left[sky_rows:]
    dist = np.hypot(fwd, left)
    haze = haze_fraction(condition, dist)[..., None]
    light = illumination(condition, fwd, left)[..., None] * np.asarray(condition.light_rgb)
    mult = np.clip(light * (1.0 - haze) * LIGHT_SCALE, 0, 255).astype(np.uint8)
    add = np.clip(haze * np.asarray(condition.haze_rgb), 0, 255).astype(np.uint8)
    ground = np.empty((h - sky_rows, w, 3), np.uint8)
    ground[:] = condition.ground

    px_per_rad = camera.focal_px
    pano_w = int(round(2 * np.pi * px_per_rad))
    azimuth = -np.arange(pano_w) / px_per_rad
    elevation = camera.row_elevation_rad()
    sun_az = sun_azimuth_for_seed(condition, seed)
    sky = _sky_panorama(condition, elevation[:sky_rows], azimuth, sun_az, seed)
    glare = None
    if condition.sun_disc and condition.glare_strength > 0:
        ang = _angle_to(azimuth[None, :], elevation[:, None], sun_az, condition.sun_elevation_rad)
        g = condition.glare_strength * (0.55 * np.exp(-ang / 0.12) + 0.25 * np.exp(-ang / 0.45))
        glare = _wrap(np.clip(g[..., None] * np.array([255, 200, 140]), 0, 255).astype(np.uint8), w)
    sheen = None
    if condition.road_sheen > 0:
        grazing = -elevation[sky_rows:, None]
        streak = 1.0 + 0.35 * _smooth_noise((1, w), seed + 11, scale=max(2, w // 25))
        strength = condition.road_sheen * np.exp(-grazing / 0.12) * streak
        sheen = np.clip(strength[..., None] * np.asarray(condition.haze_rgb), 0, 255).astype(np.uint8)
    return Layers(
        sky_rows=sky_rows,
        sky_pano=_wrap(sky, w),
        px_per_rad=px_per_rad,
        ground=ground,
        light_mult=mult,
        light_add=add,
        glare_pano=glare,
        sheen=sheen,
        precipitation=_precipitation(condition.precipitation, h, w, seed),
    )


def _wrap(pano: np.ndarray, w: int) -> np.ndarray:
    """Append the first `w` columns so a slice of width w never wraps."""
    return np.ascontiguousarray(np.concatenate([pano, pano[:, :w]], axis=1))


def _angle_to(az: np.ndarray, el: np.ndarray, az0: float, el0: float) -> np.ndarray:
    """Approximate angular distance between directions (azimuth wrapped), rad."""
    daz = np.angle(np.exp(1j * (az - az0)))
    angle_rad: np.ndarray = np.hypot(daz * np.cos(el0), el - el0)
    return angle_rad


def _smooth_noise(shape: tuple[int, int], seed: int, scale: int) -> np.ndarray:
    """(rows, cols) smooth value noise in [-1, 1] with features ~`scale` pixels, periodic in columns."""
    rows, cols = shape
    rng = np.random.default_rng([seed, 0x0153])
    gw, gh = max(2, round(cols / scale)), rows // scale + 2
    grid = rng.uniform(-1, 1, (gh, gw))
    x = np.arange(cols) * gw / cols
    x0 = np.floor(x).astype(int)
    fx = _smoothstep(x - x0)
    g = grid[:, x0 % gw] * (1 - fx) + grid[:, (x0 + 1) % gw] * fx
    y = np.arange(rows) / scale
    y0 = np.floor(y).astype(int)
    fy = _smoothstep(y - y0)[:, None]
    noise: np.ndarray = g[y0] * (1 - fy) + g[y0 + 1] * fy
    return noise


def _smoothstep(t: np.ndarray) -> np.ndarray:
    eased: np.ndarray = t * t * (3 - 2 * t)
    return eased


def _cloud_noise(elevation: np.ndarray, azimuth: np.ndarray, seed: int) -> np.ndarray:
    """(rows, cols) smooth noise in about [-1, 1] on a flat cloud layer seen from below: features shrink
    and flatten towards the horizon as the layer recedes.

    Args:
        elevation: (rows, cols) elevation of each panorama pixel, rad (>= 0).
        azimuth: (cols,) azimuth of each column, rad.
        seed: noise seed.
    """
    rng = np.random.default_rng([seed, 0xC10D])
    size = 64
    pad = 8  # blur a periodic grid: pad by wrapping, blur, crop
    noise = np.pad(rng.normal(0, 1, (size, size)), pad, mode="wrap").astype(np.float32)
    # Typed as a plain ndarray: cv2 types the blur as integer-or-float, which forbids the in-place `/=`.
    grid: np.ndarray = np.ascontiguousarray(cv2.GaussianBlur(noise, (0, 0), 2.0)[pad:-pad, pad:-pad])
    grid /= 3 * grid.std()
    reach = 3.0 / np.tan(np.maximum(elevation, 0.02))  # grid cells to the cloud overhead there
    map_x = np.mod(reach * np.cos(azimuth)[None, :], size).astype(np.float32)
    map_y = np.mod(reach * np.sin(azimuth)[None, :], size).astype(np.float32)
    return cv2.remap(grid, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


def _sky_panorama(
    condition: Condition, elevation: np.ndarray, azimuth: np.ndarray, sun_az: float, seed: int
) -> np.ndarray:
    """(rows, P, 3) uint8 sky: gradient, clouds, distant treeline, sun or stars."""
    rows, cols = len(elevation), len(azimuth)
    el = np.maximum(elevation, 0.0)[:, None] * np.ones((1, cols))
    t = np.clip(el / 0.7, 0, 1) ** 0.6
    zen, hor = np.asarray(condition.sky_zenith, float), np.asarray(condition.sky_horizon, float)
    sky: np.ndarray = hor + (zen - hor) * t[..., None]
    if rows == 0:
        return sky.astype(np.uint8)
    if condition.cloud_cover > 0:
        n = _cloud_noise(el, azimuth, seed + 1)
        thresh = 1.0 - 2.0 * condition.cloud_cover
        cover = np.clip((n - thresh) / 0.5 + 0.5, 0, 1) * (0.9 if condition.cloud_cover < 1 else 1.0)
        cover *= _smoothstep(np.clip((el - 0.01) / 0.1, 0, 1))  # thin out into the haze at the horizon
        cloud = np.asarray(condition.cloud_rgb, float) * (1.0 - 0.15 * np.clip(n, 0, 1))[..., None]
        sky = sky + (cloud - sky) * cover[..., None]
    if condition.sun_disc:
        ang = _angle_to(azimuth[None, :], elevation[:, None], sun_az, condition.sun_elevation_rad)
        glow = 0.8 * np.exp(-ang / 0.08) + 0.35 * np.exp(-ang / 0.35)
        sky = sky + glow[..., None] * np.array([255.0, 215.0, 150.0])
        sky[ang < 0.025] = (255, 246, 215)
    if condition.stars:
        rng = np.random.default_rng([seed, 0x57A5])
        star = (rng.uniform(0, 1, (rows, cols)) < 0.004) & (elevation[:, None] > 0.06)
        sky[star] = np.maximum(sky[star], rng.uniform(90, 220, (int(star.sum()), 1)))
    # Distant forest on the horizon, a bumpy band a few tenths of a degree to ~2 degrees high.
    bumps = _smooth_noise((1, cols), seed + 2, scale=max(3, cols // 60))[0]
    hills = _smooth_noise((1, cols), seed + 3, scale=max(8, cols // 6))[0]
    top = np.clip(0.016 + 0.01 * bumps + 0.016 * hills, 0.004, None)
    sky[elevation[:, None] < top[None, :]] = condition.treeline_rgb
    sky_u8: np.ndarray = np.clip(sky, 0, 255).astype(np.uint8)
    return sky_u8


def _precipitation(kind: str, h: int, w: int, seed: int, frames: int = 8) -> np.ndarray | None:
    """(frames, H, W, 3) additive overlays of falling snow or rain streaks, or None."""
    if kind == "none":
        return None
    rng = np.random.default_rng([seed, 0x9EC1])
    scale = w / 200.0
    out = np.zeros((frames, h, w, 3), np.uint8)
    for f in range(frames):
        layer = out[f]
        if kind == "snow":
            for _ in range(int(0.0025 * h * w)):
                x, y = rng.uniform(0, w), rng.uniform(0, h)
                r = rng.uniform(0.3, 0.9) * scale
                v = int(rng.uniform(90, 190))
                cv2.circle(layer, (int(x * 16), int(y * 16)), int(r * 16), (v, v, v), -1, cv2.LINE_AA, 4)
        elif kind == "rain":
            for _ in range(int(0.003 * h * w)):
                x, y = rng.uniform(0, w), rng.uniform(0, h)
                length = rng.uniform(3, 9) * scale
                ang = rng.uniform(1.2, 1.45)
                x2, y2 = x + length * np.cos(ang), y + length * np.sin(ang)
                v = int(rng.uniform(25, 55))
                p1, p2 = (int(x * 16), int(y * 16)), (int(x2 * 16), int(y2 * 16))
                cv2.line(layer, p1, p2, (v, v, v + 6), 1, cv2.LINE_AA, 4)
        else:
            raise ValueError(f"precipitation must be 'none', 'rain' or 'snow', got {kind!r}")
        if kind == "snow":
            out[f] = cv2.GaussianBlur(layer, (0, 0), 0.5 * scale)
    return out
