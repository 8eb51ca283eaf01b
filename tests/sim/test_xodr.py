"""OpenDRIVE export of embedded tracks: geometry through every point, lanes, markings, the ring of roads."""

from __future__ import annotations

import math
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from sim.tracks.track import Track
from sim.tracks.track_gen import make_track
from sim.tracks.xodr import ROADS_MIN, Geometry, plan_view, track_to_xodr


def _stadium(radius_m: float = 30.0, straight_m: float = 80.0, spacing_m: float = 0.5) -> Track:
    """Two straights joined by two half circles, counter-clockwise, points ~spacing apart."""
    pts = []
    n_straight = int(straight_m / spacing_m)
    n_arc = int(math.pi * radius_m / spacing_m)
    for i in range(n_straight):
        pts.append((-straight_m / 2 + i * straight_m / n_straight, -radius_m))
    for i in range(n_arc):
        a = -math.pi / 2 + i * math.pi / n_arc
        pts.append((straight_m / 2 + radius_m * math.cos(a), radius_m * math.sin(a)))
    for i in range(n_straight):
        pts.append((straight_m / 2 - i * straight_m / n_straight, radius_m))
    for i in range(n_arc):
        a = math.pi / 2 + i * math.pi / n_arc
        pts.append((-straight_m / 2 + radius_m * math.cos(a), radius_m * math.sin(a)))
    return Track.from_centreline("stadium", np.array(pts))


def _circle_track(radius_m: float = 40.0, n: int = 500) -> Track:
    theta = np.arange(n) * 2 * math.pi / n
    return Track.from_centreline("circle", radius_m * np.stack([np.cos(theta), np.sin(theta)], axis=1))


@pytest.mark.parametrize("name", ["oval", "country", "forest", "hills", "seed-4"])
def test_records_pass_through_every_point_and_meet_smoothly(name):
    track = make_track(name)
    records = plan_view(track.centre_xy_m, track.heading_rad)
    assert len(records) == len(track.centre_xy_m)
    ends = np.array([r.end() for r in records])
    nxt = np.roll(track.centre_xy_m, -1, axis=0)
    assert np.abs(ends[:, :2] - nxt).max() < 1e-9  # each record ends exactly on the next point
    starts = np.array([[r.x_m, r.y_m] for r in records])
    assert np.array_equal(starts, track.centre_xy_m)
    # Heading jump where one record ends and the next starts: about κ'·h²/2 between arcs, at most half
    # a segment's bend at either end of a line (the chord).
    jumps = np.angle(np.exp(1j * (np.array([r.hdg_rad for r in records]) - np.roll(ends[:, 2], 1))))
    assert np.degrees(np.abs(jumps).max()) < 0.03
    # Arcs carry the track's curvature; s accumulates the record lengths.
    arcs = np.array([r.curvature_1pm != 0.0 for r in records])
    assert np.abs(np.array([r.curvature_1pm for r in records])[arcs] - track.curvature_1pm[arcs]).max() < 2e-3
    s = np.array([r.s_m for r in records])
    lengths = np.array([r.length_m for r in records])
    assert np.allclose(s[1:], np.cumsum(lengths)[:-1], atol=1e-9, rtol=0)
    assert lengths.sum() == pytest.approx(track.length_m, abs=0.01)


def test_circle_is_one_exact_arc_per_segment():
    track = _circle_track(40.0, 500)
    records = plan_view(track.centre_xy_m, track.heading_rad)
    assert {r.curvature_1pm != 0 for r in records} == {True}
    assert np.allclose([r.curvature_1pm for r in records], 1 / 40.0, rtol=1e-9)
    assert sum(r.length_m for r in records) == pytest.approx(2 * math.pi * 40.0, rel=1e-9)


def test_straights_become_lines_curves_arcs():
    track = _stadium()
    records = plan_view(track.centre_xy_m, track.heading_rad)
    kappas = np.array([r.curvature_1pm for r in records])
    lines = kappas == 0.0
    assert lines.sum() > 250 and (~lines).sum() > 300
    assert np.allclose(kappas[np.abs(track.curvature_1pm - 1 / 30.0) < 1e-6], 1 / 30.0, rtol=1e-6)
    # A line record runs along its chord: on the straights, exactly along ±x.
    on_straights = [r for r in records if abs(abs(r.y_m) - 30.0) < 1e-9 and abs(r.x_m) < 39.0]
    assert len(on_straights) > 250
    for r in on_straights:
        assert r.curvature_1pm == 0.0
        assert math.sin(r.hdg_rad) == pytest.approx(0.0, abs=1e-12)


def test_geometry_end_of_line_and_arc():
    assert Geometry(0.0, 1.0, 2.0, math.pi / 2, 3.0, 0.0).end() == pytest.approx((1.0, 5.0, math.pi / 2))
    # A quarter circle of radius 10 turning left from heading 0 at the origin ends at (10, 10), heading π/2.
    quarter = Geometry(0.0, 0.0, 0.0, 0.0, math.pi * 5.0, 0.1).end()
    assert quarter == pytest.approx((10.0, 10.0, math.pi / 2))
    # ... and turning right (negative curvature) ends at (10, -10).
    assert Geometry(0.0, 0.0, 0.0, 0.0, math.pi * 5.0, -0.1).end() == pytest.approx(
        (10.0, -10.0, -math.pi / 2)
    )


def test_plan_view_rejects_bad_input():
    with pytest.raises(ValueError, match="centre_xy_m must be"):
        plan_view(np.zeros((5, 3)), np.zeros(5))
    with pytest.raises(ValueError, match="repeated centre-line point"):
        plan_view(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]]), np.zeros(3), closed=False)
    with pytest.raises(ValueError, match="sample it more densely"):
        plan_view(np.array([[0.0, 0.0], [0.0, 1.0]]), np.zeros(2), closed=False)


def _parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode())


@pytest.mark.parametrize(
    ("name", "mark"), [("country", "broken"), ("hills", "solid"), ("forest", "none"), ("oval", "broken")]
)
def test_document_lanes_markings_and_ring_of_roads(name, mark):
    track = make_track(name)
    root = _parse(track_to_xodr(track))
    roads = root.findall("road")
    n = len(roads)
    assert n >= ROADS_MIN and [int(r.get("id")) for r in roads] == list(range(1, n + 1))
    total = 0.0
    for k, road in enumerate(roads, start=1):
        link = road.find("link")
        assert int(link.find("successor").get("elementId")) == k % n + 1
        assert link.find("successor").get("contactPoint") == "start"
        assert int(link.find("predecessor").get("elementId")) == (k - 2) % n + 1
        assert link.find("predecessor").get("contactPoint") == "end"
        geoms = road.findall("planView/geometry")
        lengths = [float(g.get("length")) for g in geoms]
        assert float(geoms[0].get("s")) == 0.0
        assert float(road.get("length")) == pytest.approx(sum(lengths), abs=1e-6)
        total += float(road.get("length"))
        offset = road.find("lanes/laneOffset")
        assert float(offset.get("a")) == pytest.approx(track.lane_width_m / 2)
        lanes = {int(lane.get("id")): lane for lane in road.iter("lane")}
        assert sorted(lanes) == [-2, -1, 0, 1]
        assert lanes[-1].get("type") == "driving"
        assert float(lanes[-1].find("width").get("a")) == pytest.approx(track.lane_width_m)
        for shoulder in (1, -2):
            assert lanes[shoulder].get("type") == "shoulder"
            assert float(lanes[shoulder].find("width").get("a")) == pytest.approx(track.shoulder_m)
        assert lanes[-1].find("link/successor").get("id") == "-1"
        # Both edges of the driving lane carry the track's marking (lane 0's mark is its left edge).
        assert lanes[0].find("roadMark").get("type") == mark
        assert lanes[-1].find("roadMark").get("type") == mark
    assert total == pytest.approx(track.length_m, abs=0.01)
    first = roads[0].find("planView/geometry")
    assert (float(first.get("x")), float(first.get("y"))) == pytest.approx(
        tuple(track.centre_xy_m[0]), abs=1e-9
    )
    assert float(first.get("hdg")) == pytest.approx(track.heading_rad[0], abs=1e-9)


def test_long_loops_are_cut_into_more_roads():
    track = make_track("hills")
    assert len(_parse(track_to_xodr(track, max_road_length_m=100.0)).findall("road")) == math.ceil(
        track.length_m / 100.0
    )
    assert len(_parse(track_to_xodr(make_track("oval"))).findall("road")) == ROADS_MIN


def test_export_is_deterministic_and_needs_no_carla():
    assert track_to_xodr(make_track("forest")) == track_to_xodr(make_track("forest"))
    code = "import sys, sim.tracks.xodr; print('carla' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
