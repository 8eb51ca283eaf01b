"""World-fixed scenery the camera renderer draws: the road's cross-section, lane-marking dashes, roadside
trees and their shadows.

Everything here is computed once per track (and per sun direction for shadows) in world coordinates
(x east, y north, metres); the renderer only transforms and rasterises it per frame. Tree placement comes
from `Track.scenery_seed`, so the trees are a property of the track, the same under every condition.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sim.tracks.track import Track

RENDER_SPACING_M = 1.5
"""Spacing of the resampled centre line the road surface is drawn from; 1.5 m chords on a 20 m radius
bend sag by 1.4 cm, under a pixel at the nearest visible distance."""

VERGE_WIDTH_M = 1.0
"""Width of the strip of rough verge (gravel, long grass, a snow bank) beside the paved shoulder."""

MARKING_WIDTH_M = 0.15
DASH_LENGTH_M = 3.0
DASH_PERIOD_M = 9.0
_POINTS_PER_DASH_SIDE = 4

TREE_KIND_DECIDUOUS = 0
TREE_KIND_CONIFER = 1


@dataclass(frozen=True)
class RoadGeometry:
    """The closed lane centre line resampled at an even spacing, with left unit normals.

    Attributes:
        centre_xy_m: (N, 2) centre-line points, m.
        normal_xy: (N, 2) unit normals pointing left of the direction of travel.
        s_m: (N,) arc length of each point from the track's point 0, m.
        length_m: loop length, m.
        spacing_m: distance between consecutive points, m.
    """

    centre_xy_m: np.ndarray
    normal_xy: np.ndarray
    s_m: np.ndarray
    length_m: float
    spacing_m: float

    def at(self, s_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centre points and left unit normals at arbitrary arc lengths (wrapped onto the loop).

        Args:
            s_m: (...,) arc lengths, m.

        Returns:
            (centre (..., 2) m, normal (..., 2) unit).
        """
        s = np.mod(np.asarray(s_m, dtype=np.float64), self.length_m)
        s_ext = np.append(self.s_m, self.length_m)
        centre = np.stack(
            [np.interp(s, s_ext, np.append(c, c[0])) for c in self.centre_xy_m.T],
            axis=-1,
        )
        normal = np.stack(
            [np.interp(s, s_ext, np.append(n, n[0])) for n in self.normal_xy.T],
            axis=-1,
        )
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        return centre, normal


def resample_track(track: Track, spacing_m: float = RENDER_SPACING_M) -> RoadGeometry:
    """Resample a track's closed centre line at an even spacing (about `spacing_m`).

    Args:
        track: the track.
        spacing_m: target distance between points, m; adjusted so a whole number fits the loop.

    Returns:
        The resampled geometry with left normals from central differences.
    """
    if spacing_m <= 0:
        raise ValueError(f"spacing_m must be positive, got {spacing_m}")
    n = max(16, int(round(track.length_m / spacing_m)))
    s_new = np.arange(n) * (track.length_m / n)
    s_ext = np.append(track.s_m, track.length_m)
    xy = track.centre_xy_m
    centre = np.stack([np.interp(s_new, s_ext, np.append(c, c[0])) for c in xy.T], axis=-1)
    tangent = np.roll(centre, -1, axis=0) - np.roll(centre, 1, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    return RoadGeometry(
        centre_xy_m=centre,
        normal_xy=normal,
        s_m=s_new,
        length_m=float(track.length_m),
        spacing_m=float(track.length_m / n),
    )


def dash_polygons(geometry: RoadGeometry, offset_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Dashes of a dashed line at lateral `offset_m`, fixed on the road by arc length.

    The dash period is stretched slightly so a whole number of dashes closes the loop.

    Args:
        geometry: the resampled road.
        offset_m: lateral offset of the line's middle from the lane centre, left positive, m.

    Returns:
        (polygons (D, 8, 2) world points, m, each dash's left side forward then right side back;
        centres (D, 2) world dash midpoints, m).
    """
    n_dash = max(1, int(round(geometry.length_m / DASH_PERIOD_M)))
    period = geometry.length_m / n_dash
    start = np.arange(n_dash) * period
    frac = np.linspace(0.0, 1.0, _POINTS_PER_DASH_SIDE)
    s = start[:, None] + DASH_LENGTH_M * frac[None, :]
    centre, normal = geometry.at(s)
    half = 0.5 * MARKING_WIDTH_M
    left = centre + (offset_m + half) * normal
    right = centre + (offset_m - half) * normal
    polygons = np.concatenate([left, right[:, ::-1]], axis=1)
    mid, mid_n = geometry.at(start + 0.5 * DASH_LENGTH_M)
    return polygons, mid + offset_m * mid_n


@dataclass(frozen=True)
class Trees:
    """Roadside trees, world-fixed.

    Attributes:
        base_xy_m: (T, 2) trunk base positions, m.
        height_m: (T,) total heights, m.
        crown_radius_m: (T,) crown radius (deciduous) or crown half-width at its base (conifer), m.
        crown_base_m: (T,) height of the lowest foliage above the ground, m.
        trunk_width_m: (T,) trunk widths, m.
        kind: (T,) TREE_KIND_DECIDUOUS or TREE_KIND_CONIFER.
        tint: (T,) per-tree brightness factor around 1, so the trees are not all the same green.
    """

    base_xy_m: np.ndarray
    height_m: np.ndarray
    crown_radius_m: np.ndarray
    crown_base_m: np.ndarray
    trunk_width_m: np.ndarray
    kind: np.ndarray
    tint: np.ndarray

    def __len__(self) -> int:
        return len(self.height_m)

    @classmethod
    def none(cls) -> Trees:
        """No trees."""
        empty = np.zeros(0)
        return cls(np.zeros((0, 2)), empty, empty, empty, empty, np.zeros(0, np.int8), empty)


def place_trees(track: Track, geometry: RoadGeometry, *, spacing_m: float = 11.0) -> Trees:
    """Scatter trees along both sides of the road from `track.scenery_seed`.

    Trees come in groves and clearings (a slowly varying density along the road), 1.5–20 m beyond the
    verge, and never closer than that to any part of the road (tracks that double back are checked).

    Args:
        track: the track (seed, widths).
        geometry: its resampled centre line.
        spacing_m: mean distance between tree candidates along each side, m.

    Returns:
        The trees, in no particular order.
    """
    rng = np.random.default_rng([track.scenery_seed, 0x7EE5])
    edge_m = track.road_half_width_m + VERGE_WIDTH_M
    bases, kinds = [], []
    for side in (1.0, -1.0):
        n_cand = int(geometry.length_m / spacing_m * 1.6) + 8
        s = np.cumsum(rng.exponential(spacing_m * 0.8, n_cand) + 0.2 * spacing_m)
        s = s[s < geometry.length_m]
        # Groves and clearings: a density that drifts along the road (period ~150-300 m).
        phase = rng.uniform(0, 2 * np.pi, 2)
        density = 0.55 + 0.45 * np.sin(2 * np.pi * s / rng.uniform(150, 300) + phase[0])
        density += 0.25 * np.sin(2 * np.pi * s / 61.0 + phase[1])
        s = s[rng.uniform(0, 1, len(s)) < density]
        lateral = edge_m + 1.5 + rng.gamma(1.6, 3.0, len(s)).clip(0, 18)
        centre, normal = geometry.at(s)
        bases.append(centre + side * lateral[:, None] * normal)
        kinds.append((rng.uniform(0, 1, len(s)) < 0.4).astype(np.int8))
    base = np.concatenate(bases)
    kind = np.concatenate(kinds)
    keep = _distance_to_road(base, geometry.centre_xy_m) >= edge_m + 1.2
    base, kind = base[keep], kind[keep]
    t = len(base)
    conifer = kind == TREE_KIND_CONIFER
    height = np.where(conifer, rng.uniform(7.0, 14.0, t), rng.uniform(5.0, 10.0, t))
    crown = np.where(conifer, rng.uniform(0.18, 0.26, t), rng.uniform(0.26, 0.38, t)) * height
    crown_base = np.where(conifer, rng.uniform(0.08, 0.2, t) * height, height - 2 * crown)
    return Trees(
        base_xy_m=base,
        height_m=height,
        crown_radius_m=crown,
        crown_base_m=crown_base,
        trunk_width_m=np.where(conifer, 0.25, 0.35) * rng.uniform(0.8, 1.3, t),
        kind=kind,
        tint=rng.uniform(0.8, 1.2, t),
    )


@dataclass(frozen=True)
class GroundPatches:
    """World-fixed blotches on the ground (tufts and dry patches in the grass, repairs on the asphalt):
    texture that moves past the car.

    Attributes:
        polygons_xy_m: (P, 6, 2) convex hexagons, m.
        factor: (P,) brightness multiplier of the ground under each patch.
    """

    polygons_xy_m: np.ndarray
    factor: np.ndarray

    def __len__(self) -> int:
        return len(self.factor)

    @classmethod
    def none(cls) -> GroundPatches:
        """No patches."""
        return cls(np.zeros((0, 6, 2)), np.zeros(0))


def place_ground_patches(track: Track, geometry: RoadGeometry, *, spacing_m: float = 7.0) -> GroundPatches:
    """Scatter ground patches from `track.scenery_seed`: grass patches 0.5-20 m beyond the verge on both
    sides (clear of every part of the road), and sparse darker repairs on the asphalt.

    Args:
        track: the track (seed, widths).
        geometry: its resampled centre line.
        spacing_m: mean distance between grass patches along each side, m.

    Returns:
        The patches.
    """
    rng = np.random.default_rng([track.scenery_seed, 0x9A7C])
    edge_m = track.road_half_width_m + VERGE_WIDTH_M
    centres, radii, factors, on_road = [], [], [], []
    for side in (1.0, -1.0):
        s = np.cumsum(rng.exponential(spacing_m, int(geometry.length_m / spacing_m * 1.5) + 4))
        s = s[s < geometry.length_m]
        radius = rng.uniform(1.2, 4.0, len(s))
        lateral = edge_m + radius + rng.uniform(0.3, 20.0, len(s))
        c, n = geometry.at(s)
        centres.append(c + side * lateral[:, None] * n)
        radii.append(radius)
        lighter = rng.uniform(0, 1, len(s)) < 0.35
        factors.append(np.where(lighter, rng.uniform(1.08, 1.2, len(s)), rng.uniform(0.72, 0.88, len(s))))
        on_road.append(np.zeros(len(s), dtype=bool))
    s = np.cumsum(rng.exponential(4 * spacing_m, int(geometry.length_m / spacing_m / 4) + 2))
    s = s[s < geometry.length_m]
    c, n = geometry.at(s)
    radius = rng.uniform(0.3, 0.8, len(s))
    lateral = rng.uniform(-1, 1, len(s)) * (0.5 * track.lane_width_m - radius).clip(0, None)
    centres.append(c + lateral[:, None] * n)
    radii.append(radius)
    factors.append(rng.uniform(0.9, 0.96, len(s)))
    on_road.append(np.ones(len(s), dtype=bool))
    centre, radius = np.concatenate(centres), np.concatenate(radii)
    factor, road = np.concatenate(factors), np.concatenate(on_road)
    # Irregular hexagons: jittered radii, random turn, stretched up to 2:1.
    ang = np.linspace(0, 2 * np.pi, 6, endpoint=False)[None, :] + rng.uniform(0, np.pi, (len(centre), 1))
    r = radius[:, None] * rng.uniform(0.75, 1.0, (len(centre), 6))
    stretch = rng.uniform(1.0, 2.0, (len(centre), 1))
    x, y = r * np.cos(ang) * stretch, r * np.sin(ang)
    turn = rng.uniform(0, np.pi, (len(centre), 1))
    px = centre[:, :1] + x * np.cos(turn) - y * np.sin(turn)
    py = centre[:, 1:] + x * np.sin(turn) + y * np.cos(turn)
    polygons = np.stack([px, py], axis=-1)
    # Keep grass patches wholly off the road and verge, repairs wholly on the asphalt.
    d = _distance_to_road(polygons.reshape(-1, 2), geometry.centre_xy_m).reshape(-1, 6)
    keep = np.where(road, d.max(axis=1) <= track.road_half_width_m - 0.1, d.min(axis=1) >= edge_m + 0.2)
    return GroundPatches(polygons_xy_m=polygons[keep], factor=factor[keep])


def _distance_to_road(points_xy_m: np.ndarray, centre_xy_m: np.ndarray) -> np.ndarray:
    """(P,) distance from each point to the nearest centre-line point, m (chunked to bound memory)."""
    out = np.empty(len(points_xy_m))
    for i in range(0, len(points_xy_m), 256):
        chunk = points_xy_m[i : i + 256]
        out[i : i + 256] = ((chunk[:, None, :] - centre_xy_m[None, :, :]) ** 2).sum(-1).min(axis=1)
    return np.sqrt(out)


def tree_shadow_polygons(trees: Trees, sun_azimuth_rad: float, sun_elevation_rad: float) -> np.ndarray:
    """Ground shadows of the trees for a sun direction: convex polygons in world coordinates.

    A deciduous crown (a sphere) casts an ellipse stretched by 1/sin(elevation) along the shadow
    direction; a conifer (a cone) casts the hull of its base disc and its tip; the trunk joins the
    shadow to the base.

    Args:
        trees: the trees.
        sun_azimuth_rad: direction towards the sun, counter-clockwise from +x, rad.
        sun_elevation_rad: sun height above the horizon, rad (> 0).

    Returns:
        (T, K, 2) convex polygons, m; shorter hulls are padded by repeating their last vertex.
    """
    if not 0 < sun_elevation_rad < np.pi / 2:
        raise ValueError(f"sun_elevation_rad must be in (0, pi/2), got {sun_elevation_rad}")
    t = len(trees)
    if t == 0:
        return np.zeros((0, 3, 2))
    away = -np.array([np.cos(sun_azimuth_rad), np.sin(sun_azimuth_rad)])
    across = np.array([-away[1], away[0]])
    reach = 1.0 / np.tan(sun_elevation_rad)
    ang = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    base = trees.base_xy_m
    conifer = trees.kind == TREE_KIND_CONIFER
    r = trees.crown_radius_m
    crown_centre_h = np.where(conifer, trees.crown_base_m, trees.crown_base_m + r)
    along_r = np.where(conifer, r, r / np.sin(sun_elevation_rad))
    centre = base + (crown_centre_h * reach)[:, None] * away
    ellipse = (
        centre[:, None, :]
        + (along_r[:, None] * np.cos(ang))[..., None] * away
        + (r[:, None] * np.sin(ang))[..., None] * across
    )
    tip = base + (trees.height_m * reach)[:, None] * away
    half_trunk = 0.5 * trees.trunk_width_m[:, None] * across
    extra = np.stack([base + half_trunk, base - half_trunk, np.where(conifer[:, None], tip, centre)], axis=1)
    candidates = np.concatenate([ellipse, extra], axis=1).astype(np.float32)
    hulls = [cv2.convexHull(c)[:, 0, :] for c in candidates]
    k = max(len(h) for h in hulls)
    out = np.empty((t, k, 2))
    for i, h in enumerate(hulls):
        out[i, : len(h)] = h
        out[i, len(h) :] = h[-1]
    return out


def edge_wobble(geometry: RoadGeometry, seed: int) -> np.ndarray:
    """A smooth, world-fixed noise along the road in [0, 1] (e.g. how far snow reaches onto the road).

    Args:
        geometry: the resampled road (N points).
        seed: noise seed.

    Returns:
        (N,) values in [0, 1], periodic around the loop.
    """
    rng = np.random.default_rng([seed, 0xED6E])
    turns = geometry.s_m / geometry.length_m * 2 * np.pi
    # Whole numbers of cycles per loop (so it closes), wavelengths ~4-40 m.
    wavelength = rng.uniform(4.0, 40.0, 12)
    cycles = np.maximum(1, np.round(geometry.length_m / wavelength))
    phase = rng.uniform(0, 2 * np.pi, 12)
    wave = np.sin(cycles[:, None] * turns[None, :] + phase[:, None]).sum(0)
    wave -= wave.min()
    normalised: np.ndarray = wave / max(float(wave.max()), 1e-9)
    return normalised
