"""World-fixed scenery: resampled road, dashes, trees clear of the road, shadows away from the sun."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.embedded.scenery import (
    DASH_LENGTH_M,
    DASH_PERIOD_M,
    MARKING_WIDTH_M,
    VERGE_WIDTH_M,
    GroundPatches,
    Trees,
    dash_polygons,
    edge_wobble,
    place_ground_patches,
    place_trees,
    resample_track,
    tree_shadow_polygons,
)
from sim.tracks.track import Track


def circle(radius_m: float = 40.0, seed: int = 0) -> Track:
    n = int(2 * math.pi * radius_m / 0.7)
    a = 2 * math.pi * np.arange(n) / n
    return Track.from_centreline("circle", radius_m * np.stack([np.cos(a), np.sin(a)], 1), scenery_seed=seed)


def hairpin_stadium(seed: int = 0) -> Track:
    """Two 200 m straights only 24 m apart: trees between them must clear both."""
    r, n_s = 12.0, 200
    s = np.arange(n_s) - 100.0
    a = math.pi * np.arange(38) / 38
    pts = np.concatenate(
        [
            np.stack([s, np.full(n_s, -r)], 1),
            np.stack([100 + r * np.sin(a), -r * np.cos(a)], 1),
            np.stack([-s, np.full(n_s, r)], 1),
            np.stack([-100 - r * np.sin(a), r * np.cos(a)], 1),
        ]
    )
    return Track.from_centreline("hairpin", pts, scenery_seed=seed)


def test_resample_is_even_closed_and_has_left_normals() -> None:
    track = circle(40.0)
    g = resample_track(track, 1.5)
    steps = np.linalg.norm(np.diff(np.vstack([g.centre_xy_m, g.centre_xy_m[:1]]), axis=0), axis=1)
    assert steps.std() < 0.01 and abs(steps.mean() - 1.5) < 0.05
    np.testing.assert_allclose(np.linalg.norm(g.normal_xy, axis=1), 1.0)
    # Counter-clockwise circle: left is towards the centre.
    np.testing.assert_allclose(g.normal_xy, -g.centre_xy_m / 40.0, atol=1e-3)
    c0, n0 = g.at(np.array([3.3]))
    c1, n1 = g.at(np.array([3.3 + g.length_m]))
    np.testing.assert_allclose(c0, c1)
    np.testing.assert_allclose(n0, n1)


def test_dashes_close_the_loop_at_the_right_offset() -> None:
    g = resample_track(circle(40.0))
    polys, centres = dash_polygons(g, 1.75)
    assert len(polys) == round(g.length_m / DASH_PERIOD_M)
    radius = np.linalg.norm(polys, axis=2)  # left of a CCW circle = inside
    assert np.all(np.abs(radius - (40.0 - 1.75)) <= MARKING_WIDTH_M / 2 + 0.01)  # chords sag by mm
    length = np.linalg.norm(polys[:, 3] - polys[:, 0], axis=1)  # the dash's outer side, nearer the centre
    np.testing.assert_allclose(length, DASH_LENGTH_M * (40.0 - 1.75 - MARKING_WIDTH_M / 2) / 40.0, rtol=0.01)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 40.0 - 1.75, atol=0.05)


@pytest.mark.parametrize("make", [circle, hairpin_stadium])
def test_trees_stand_clear_of_every_part_of_the_road(make) -> None:
    track = make(seed=7)
    trees = place_trees(track, resample_track(track))
    assert len(trees) > 10
    d = np.linalg.norm(trees.base_xy_m[:, None] - track.centre_xy_m[None], axis=2).min(axis=1)
    assert d.min() >= track.road_half_width_m + VERGE_WIDTH_M + 1.0


def test_trees_come_from_the_scenery_seed() -> None:
    g = resample_track(circle(40.0))
    a, b = place_trees(circle(40.0, seed=1), g), place_trees(circle(40.0, seed=1), g)
    c = place_trees(circle(40.0, seed=2), g)
    np.testing.assert_array_equal(a.base_xy_m, b.base_xy_m)
    assert len(a) != len(c) or not np.array_equal(a.base_xy_m, c.base_xy_m)
    assert len(Trees.none()) == 0


def test_shadows_fall_away_from_the_sun_and_lengthen_at_dusk() -> None:
    track = circle(60.0, seed=3)
    trees = place_trees(track, resample_track(track))
    sun = 0.8
    high = tree_shadow_polygons(trees, sun, 0.8)
    low = tree_shadow_polygons(trees, sun, 0.25)
    away = -np.array([math.cos(sun), math.sin(sun)])
    reach_high = ((high.mean(axis=1) - trees.base_xy_m) @ away).mean()
    reach_low = ((low.mean(axis=1) - trees.base_xy_m) @ away).mean()
    assert 0 < reach_high < reach_low
    with pytest.raises(ValueError, match="sun_elevation_rad"):
        tree_shadow_polygons(trees, sun, 0.0)


def test_edge_wobble_is_smooth_and_seeded() -> None:
    g = resample_track(circle(60.0))
    w = edge_wobble(g, 4)
    assert w.min() == 0.0 and w.max() == 1.0
    assert np.abs(np.diff(np.append(w, w[0]))).max() < 0.5  # smooth, also across the seam
    np.testing.assert_array_equal(w, edge_wobble(g, 4))
    assert not np.array_equal(w, edge_wobble(g, 5))


def test_grass_patches_stay_off_the_road_and_come_from_the_seed() -> None:
    track = hairpin_stadium(seed=5)
    g = resample_track(track)
    patches = place_ground_patches(track, g)
    assert len(patches) > 50 and len(GroundPatches.none()) == 0
    np.testing.assert_array_equal(patches.polygons_xy_m, place_ground_patches(track, g).polygons_xy_m)
    d = np.linalg.norm(patches.polygons_xy_m[:, :, None] - track.centre_xy_m[None, None], axis=3).min(axis=2)
    grass = patches.factor > 0.97  # the lighter grass patches (asphalt repairs are darker)
    assert grass.any()
    assert d[grass].min() >= track.road_half_width_m + VERGE_WIDTH_M - 0.05
    repairs = d.max(axis=1) < 0.5 * track.lane_width_m + 0.1
    assert repairs.any(), "some patches are repairs within the lane"
