"""Lane-relative geometry at known poses: offsets, heading errors, arc length, signs, progress, laps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.tracks.geometry import ProgressTracker, TrackLocator, on_road, wrap_angle
from sim.tracks.track import Track
from sim.tracks.track_gen import make_track
from sim.types import Pose

R_M = 50.0


def _circle(radius_m: float = R_M, clockwise: bool = False) -> Track:
    n = int(round(2 * math.pi * radius_m / 0.5))
    theta = np.arange(n) * 2 * math.pi / n
    xy = np.stack([radius_m * np.cos(theta), radius_m * np.sin(theta)], axis=1)
    return Track.from_centreline("circle", xy[::-1] if clockwise else xy)


def _stadium(straight_m: float = 200.0, radius_m: float = 30.0) -> Track:
    """Straights along y = ±radius from x = 0 to straight_m, joined by half circles; counter-clockwise."""
    pts = [(x, -radius_m) for x in np.arange(0.0, straight_m, 0.5)]
    arc_n = int(round(math.pi * radius_m / 0.5))
    pts += [
        (straight_m + radius_m * math.sin(a), -radius_m * math.cos(a))
        for a in np.arange(arc_n) * math.pi / arc_n
    ]
    pts += [(x, radius_m) for x in np.arange(straight_m, 0.0, -0.5)]
    pts += [(-radius_m * math.sin(a), radius_m * math.cos(a)) for a in np.arange(arc_n) * math.pi / arc_n]
    return Track.from_centreline("stadium", np.array(pts))


@pytest.mark.parametrize("offset_m", [-2.0, -0.7, 0.0, 0.3, 1.9])
@pytest.mark.parametrize("phi", [0.0, 0.001, 1.0, 2.5, math.pi, 4.0, 2 * math.pi - 0.003])
def test_circle_offset_heading_and_arc_length_are_exact(phi, offset_m):
    track = _circle()
    loc = TrackLocator(track)
    r = R_M - offset_m  # counter-clockwise: the centre of the circle is on the left
    yaw_err = 0.05
    lane = loc.locate(Pose(r * math.cos(phi), r * math.sin(phi), phi + math.pi / 2 + yaw_err))
    assert lane.lateral_offset_m == pytest.approx(offset_m, abs=1e-3)
    assert lane.heading_error_rad == pytest.approx(yaw_err, abs=1e-4)
    # Arc length follows the track's own (chord-summed) s_m: the angle's share of the loop.
    expected_s = (phi / (2 * math.pi) * track.length_m) % track.length_m
    ds = (lane.s_m - expected_s + track.length_m / 2) % track.length_m - track.length_m / 2
    assert abs(ds) < 1e-3
    assert lane.curvature_1pm == pytest.approx(1 / R_M, rel=1e-3)


def test_clockwise_circle_signs():
    loc = TrackLocator(_circle(clockwise=True))
    # Driving clockwise, the centre is on the right: a point inside is right of the lane (negative),
    # and the lane heads -y at (R, 0).
    lane = loc.locate(Pose(R_M - 1.0, 0.0, -math.pi / 2 + 0.1))
    assert lane.lateral_offset_m == pytest.approx(-1.0, abs=1e-3)
    assert lane.heading_error_rad == pytest.approx(0.1, abs=1e-4)
    assert lane.curvature_1pm == pytest.approx(-1 / R_M, rel=1e-3)


@pytest.mark.parametrize("x_m", [20.0, 20.25, 100.1, 180.0])
@pytest.mark.parametrize("y_m", [-31.5, -30.0, -29.0, -28.2])
def test_straight_offset_heading_and_arc_length(x_m, y_m):
    track = _stadium()
    lane = TrackLocator(track).locate(Pose(x_m, y_m, -0.2))
    assert lane.lateral_offset_m == pytest.approx(y_m + 30.0, abs=1e-6)  # left of +x is +y
    assert lane.heading_error_rad == pytest.approx(-0.2, abs=1e-9)
    assert lane.s_m == pytest.approx(x_m, abs=1e-6)
    assert lane.curvature_1pm == pytest.approx(0.0, abs=1e-9)


def test_heading_error_wraps_and_reversed_car():
    loc = TrackLocator(_stadium())
    lane = loc.locate(Pose(50.0, -30.0, math.pi - 0.1))  # facing backwards, slightly left
    assert lane.heading_error_rad == pytest.approx(math.pi - 0.1, abs=1e-9)
    lane = loc.locate(Pose(50.0, -30.0, 3 * math.pi + 0.1))
    assert lane.heading_error_rad == pytest.approx(-math.pi + 0.1, abs=1e-9)
    assert wrap_angle(math.pi) == pytest.approx(-math.pi)
    assert wrap_angle(-7.0) == pytest.approx(-7.0 + 2 * math.pi)


@pytest.mark.parametrize("name", ["hills", "seed-8"])
def test_pose_at_and_locate_are_inverse(name):
    track = make_track(name)
    loc = TrackLocator(track)
    rng = np.random.default_rng(0)
    for s, d, e in zip(rng.uniform(0, track.length_m, 300), rng.uniform(-2, 2, 300), rng.uniform(-1, 1, 300)):
        lane = loc.locate(loc.pose_at(s, d, e))
        ds = (lane.s_m - s + track.length_m / 2) % track.length_m - track.length_m / 2
        assert abs(ds) < 1e-3
        assert lane.lateral_offset_m == pytest.approx(d, abs=1e-4)
        assert lane.heading_error_rad == pytest.approx(e, abs=1e-4)


def test_point_at_matches_track_points_and_wraps():
    track = make_track("forest")
    loc = TrackLocator(track)
    for i in (0, 17, len(track.s_m) - 1):
        p = loc.point_at(float(track.s_m[i]))
        assert (p.x_m, p.y_m) == pytest.approx(tuple(track.centre_xy_m[i]), abs=1e-9)
        assert p.heading_rad == pytest.approx(track.heading_rad[i], abs=1e-9)
    a, b = loc.point_at(12.3), loc.point_at(12.3 + 3 * track.length_m)
    assert (a.x_m, a.y_m) == pytest.approx((b.x_m, b.y_m), abs=1e-6)
    assert loc.point_at(-1.0).x_m == pytest.approx(loc.point_at(track.length_m - 1.0).x_m, abs=1e-6)


def test_nearest_index_is_global_minimum():
    track = make_track("hills")
    loc = TrackLocator(track)
    rng = np.random.default_rng(1)
    for x, y in rng.uniform(-250, 250, size=(200, 2)):
        d = np.hypot(*(track.centre_xy_m - (x, y)).T)
        assert d[loc.nearest_index(x, y)] == d.min()


def test_on_road_uses_road_edge_minus_half_car():
    track = _circle()  # lane 3.5 m + 0.5 m shoulders: road half width 2.25 m
    assert on_road(1.35, track, 0.9) and on_road(-1.35, track, 0.9)
    assert not on_road(1.36, track, 0.9) and not on_road(-1.36, track, 0.9)


def test_progress_crosses_start_line_counts_laps_and_goes_backwards():
    tracker = ProgressTracker(100.0, start_s_m=90.0)
    for s in (95.0, 0.0, 40.0, 80.0, 99.0, 10.0):
        tracker.update(s)
    assert tracker.progress_m == pytest.approx(120.0)
    assert tracker.laps == 1
    tracker.update(95.0)  # backwards across the line
    assert tracker.progress_m == pytest.approx(105.0)
    tracker.rebase(50.0)  # teleport: not driven
    assert tracker.update(52.0) == pytest.approx(107.0)
    backwards = ProgressTracker(100.0, 0.0)
    backwards.update(90.0)
    assert backwards.progress_m == pytest.approx(-10.0) and backwards.laps == -1
    with pytest.raises(ValueError, match="length_m"):
        ProgressTracker(0.0, 0.0)
