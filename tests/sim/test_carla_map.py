"""The same road in both simulators: a real `carla.Map` built offline from an exported embedded track.

Acceptance: lateral offsets, heading errors and lane widths from CARLA's map equal the embedded
simulator's at the same poses (≤ 1 cm, ≤ 0.1°), signs included (CARLA's frame is left-handed). Checked
two ways: CARLA's own nearest waypoint (`waypoint_lane_position`: `get_waypoint`, moved once along the
lane onto the projection; offset along `right_vector`, the waypoint's yaw and lane width), and the
backend's route (waypoints sampled around the loop into a `Track`, then `TrackLocator`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from sim.carla.frames import carla_transform, pose_from_carla
from sim.carla.route import LaneGraph, closed_route, lane_key, waypoint_lane_position
from sim.tracks.geometry import TrackLocator, wrap_angle
from sim.tracks.track_gen import make_track
from sim.tracks.xodr import DRIVING_LANE_ID, track_to_xodr
from sim.types import Pose

carla = pytest.importorskip("carla")
pytestmark = pytest.mark.carla

TRACKS = ["oval", "country", "forest", "hills", "seed-12"]
MAX_OFFSET_ERR_M = 0.01
MAX_HEADING_ERR_RAD = math.radians(0.1)


@functools.cache
def _map(name: str):
    return carla.Map(name, track_to_xodr(make_track(name)))


def _poses(track, n: int, seed: int = 0) -> list[Pose]:
    """Poses spread over the whole loop, up to ±2 m off the centre (beyond the lane) and ±30° yawed."""
    locator = TrackLocator(track)
    rng = np.random.default_rng(seed)
    return [
        locator.pose_at(s, off, he)
        for s, off, he in zip(
            rng.uniform(0, track.length_m, n), rng.uniform(-2.0, 2.0, n), rng.uniform(-0.5, 0.5, n)
        )
    ]


@pytest.mark.parametrize("name", TRACKS)
def test_carla_waypoints_agree_with_the_embedded_simulator(name):
    track = make_track(name)
    embedded = TrackLocator(track)
    errors = []
    for pose in _poses(track, 300):
        ours = embedded.locate(pose)
        offset, heading_error, width = waypoint_lane_position(_map(name), pose)
        assert width == pytest.approx(track.lane_width_m, abs=1e-6)
        errors.append((offset - ours.lateral_offset_m, wrap_angle(heading_error - ours.heading_error_rad)))
    errors = np.abs(np.array(errors))
    assert errors[:, 0].max() <= MAX_OFFSET_ERR_M
    assert errors[:, 1].max() <= MAX_HEADING_ERR_RAD


@pytest.mark.parametrize("name", TRACKS)
def test_the_backend_route_agrees_with_the_embedded_simulator(name):
    track = make_track(name)
    route = closed_route(
        _map(name),
        _map(name).get_waypoint_xodr(1, DRIVING_LANE_ID, 0.0),
        name=name,
        shoulder_m=track.shoulder_m,
    )
    assert route.track.length_m == pytest.approx(track.length_m, abs=0.01)
    assert route.track.lane_width_m == track.lane_width_m and route.track.shoulder_m == track.shoulder_m
    assert route.track.marking == track.marking
    assert np.all(route.z_m == 0.0) and np.allclose(route.lane_width_m, track.lane_width_m)
    embedded, carla_side = TrackLocator(track), TrackLocator(route.track)
    for pose in _poses(track, 300, seed=1):
        a, b = embedded.locate(pose), carla_side.locate(pose)
        assert b.lateral_offset_m == pytest.approx(a.lateral_offset_m, abs=1e-3)
        assert b.heading_error_rad == pytest.approx(a.heading_error_rad, abs=math.radians(0.01))
        assert wrap_angle((b.s_m - a.s_m) * 2 * math.pi / track.length_m) == pytest.approx(0.0, abs=1e-5)
        assert b.curvature_1pm == pytest.approx(a.curvature_1pm, abs=2e-3)


def test_sign_conventions_left_is_positive_in_both_frames():
    track = make_track("country")
    locator = TrackLocator(track)
    for s in (10.0, 400.0, 900.0):
        centre = locator.pose_at(s)
        left = locator.pose_at(s, 1.0, math.radians(10.0))
        offset, heading_error, _ = waypoint_lane_position(_map("country"), left)
        assert offset == pytest.approx(1.0, abs=1e-3)
        assert heading_error == pytest.approx(math.radians(10.0), abs=math.radians(0.05))
        # CARLA sees the same place with y flipped and the yaw mirrored (clockwise degrees).
        wp = _map("country").get_waypoint(carla_transform(centre).location)
        assert wp.transform.location.y == pytest.approx(-centre.y_m, abs=1e-3)
        assert wp.transform.location.x == pytest.approx(centre.x_m, abs=1e-3)
        assert pose_from_carla(wp.transform).yaw_rad == pytest.approx(centre.yaw_rad, abs=1e-3)
        # The left of the road in our frame is CARLA's -right_vector.
        right = wp.transform.get_right_vector()
        nx, ny = -math.sin(centre.yaw_rad), math.cos(centre.yaw_rad)  # our left normal
        assert (right.x, -right.y) == pytest.approx((-nx, -ny), abs=1e-3)


def test_the_exported_loop_is_a_ring_carla_can_drive_around():
    track = make_track("forest")
    carla_map = _map("forest")
    graph = LaneGraph(carla_map)
    start = carla_map.get_waypoint_xodr(1, DRIVING_LANE_ID, 0.0)
    cycle = graph.cycle_through(lane_key(start))
    assert [k[0] for k in cycle] == list(range(1, len(cycle) + 1))
    # Chained waypoint.next() goes once around and ends where it began.
    wp, travelled = start, 0.0
    while travelled < track.length_m - 5.0:
        (wp,) = wp.next(5.0)
        travelled += 5.0
    (wp,) = wp.next(track.length_m - travelled)
    assert wp.transform.location.distance(start.transform.location) < 0.05
    # The lanes beside the driving lane are shoulders of the track's shoulder width.
    for side in (start.get_left_lane(), start.get_right_lane()):
        assert side.lane_type == carla.LaneType.Shoulder
        assert side.lane_width == pytest.approx(track.shoulder_m)


def test_markings_reach_carla():
    types = {}
    for name in ("country", "hills", "forest"):
        wp = _map(name).get_waypoint_xodr(2, DRIVING_LANE_ID, 5.0)
        types[name] = (str(wp.left_lane_marking.type), str(wp.right_lane_marking.type))
    assert types == {"country": ("Broken", "Broken"), "hills": ("Solid", "Solid"), "forest": ("NONE", "NONE")}
