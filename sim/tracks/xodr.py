"""An embedded `Track` as OpenDRIVE 1.4 text, so CARLA can drive the same road (`generate_opendrive_world`).

The reference line is the track's lane centre, in the track's own frame (x east, y north, heading
counter-clockwise: OpenDRIVE's frame too; CARLA flips y when it loads the file). The plan view has one
`arc` (or `line`) record per centre-line segment: it starts at point i with the track's heading there
and bends just enough to pass exactly through point i + 1, so every track point lies on the reference
line and consecutive records meet with a heading jump of about κ′·h²/2 (< 0.03° on the presets). On a
circle this is the circle itself.

Lanes, right-hand traffic, driven in the direction of increasing s: a `laneOffset` of half the lane width
moves lane 0 left of the reference line, so lane -1 (`driving`, the track's lane width) is centred on
it; one `shoulder` lane of the track's shoulder width lies on either side. The lane-edge markings
(`solid` / `broken` / none) sit on both edges of the driving lane. The loop is a ring of roads linked end
to start (no junction).

This module is plain text and numpy: it never imports carla.

Example:
    >>> from sim.tracks.track_gen import make_track
    >>> oval = make_track("oval")
    >>> text = track_to_xodr(oval)
    >>> text.count("<geometry ") == len(oval.centre_xy_m), text.count("<road ")
    (True, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

import numpy as np

from sim.tracks.track import Track

ROADS_MIN = 3
"""The loop is cut into at least this many roads (CARLA follows a cycle of three, not of one or two)."""
DRIVING_LANE_ID = -1
"""The driving lane: right of the reference line in OpenDRIVE terms, centred on it by the lane offset."""

LINE_CURVATURE_1PM = 1e-3
"""Segments bending less than this become `line` records: CARLA evaluates an arc of radius R with an
error that grows with R (8 mm at R = 100 km, < 0.1 mm below R = 1 km); the chord's heading differs from
the lane's by at most κ·h/2 (0.014° at 0.5 m spacing)."""
_GEO_REFERENCE = "+proj=tmerc +lat_0=0 +lon_0=0 +k=1 +x_0=0 +y_0=0 +ellps=WGS84"  # a flat local frame
_MARKING_TYPES = {"solid": "solid", "dashed": "broken", "none": "none"}


@dataclass(frozen=True)
class Geometry:
    """One plan-view record: a line or an arc starting at (x, y) with heading `hdg_rad`.

    Attributes:
        s_m: arc length of the record's start along the reference line, m.
        x_m, y_m: start point, m (OpenDRIVE / our frame: x east, y north).
        hdg_rad: start heading, counter-clockwise from +x, rad.
        length_m: arc length of the record, m.
        curvature_1pm: constant curvature, left positive, 1/m (0: a line).
    """

    s_m: float
    x_m: float
    y_m: float
    hdg_rad: float
    length_m: float
    curvature_1pm: float

    def end(self) -> tuple[float, float, float]:
        """(x, y, heading) at the end of the record, m and rad."""
        k, length = self.curvature_1pm, self.length_m
        if abs(k * length) < 1e-12:
            return (
                self.x_m + length * math.cos(self.hdg_rad),
                self.y_m + length * math.sin(self.hdg_rad),
                self.hdg_rad,
            )
        hdg_end = self.hdg_rad + k * length
        return (
            self.x_m + (math.sin(hdg_end) - math.sin(self.hdg_rad)) / k,
            self.y_m - (math.cos(hdg_end) - math.cos(self.hdg_rad)) / k,
            hdg_end,
        )


def plan_view(centre_xy_m: np.ndarray, heading_rad: np.ndarray, closed: bool = True) -> list[Geometry]:
    """Arc records through consecutive points of a centre line.

    Record i starts at point i with heading `heading_rad[i]` and is the arc that passes through point
    i + 1: its turn over the segment is twice the angle between the start heading and the chord, its
    length the arc over that chord. Where that arc bends less than `LINE_CURVATURE_1PM` the record is
    the chord (a line from point i to point i + 1).

    Args:
        centre_xy_m: (N, 2) points, m.
        heading_rad: (N,) direction of travel at each point, rad.
        closed: the last point connects back to the first (one record more).

    Returns:
        N records for a closed line, N - 1 for an open one, with cumulative `s_m`.
    """
    xy = np.asarray(centre_xy_m, dtype=np.float64)
    hdg = np.asarray(heading_rad, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) < 2 or hdg.shape != (len(xy),):
        raise ValueError(f"centre_xy_m must be (N >= 2, 2) and heading_rad (N,), got {xy.shape}, {hdg.shape}")
    nxt = np.roll(xy, -1, axis=0) if closed else xy[1:]
    start = xy if closed else xy[:-1]
    records: list[Geometry] = []
    s = 0.0
    for (x0, y0), (x1, y1), h0 in zip(start.tolist(), nxt.tolist(), hdg.tolist()):
        chord = math.hypot(x1 - x0, y1 - y0)
        if chord <= 0.0:
            raise ValueError(f"repeated centre-line point at s = {s:.3f} m")
        half_turn = (math.atan2(y1 - y0, x1 - x0) - h0 + math.pi) % (2.0 * math.pi) - math.pi
        if abs(half_turn) > math.pi / 4:
            raise ValueError(
                f"centre line turns {math.degrees(2 * half_turn):.1f}° within one segment at s = {s:.3f} m;"
                " sample it more densely"
            )
        if abs(2.0 * half_turn / chord) < LINE_CURVATURE_1PM:
            # Nearly straight: the chord itself (CARLA evaluates arcs of huge radius inexactly).
            records.append(Geometry(s, x0, y0, h0 + half_turn, chord, 0.0))
            s += chord
            continue
        length = chord * half_turn / math.sin(half_turn)  # arc over the chord
        kappa = 2.0 * half_turn / length
        records.append(Geometry(s, x0, y0, h0, length, kappa))
        s += length
    return records


def track_to_xodr(track: Track, *, speed_limit_kmh: float = 50.0, max_road_length_m: float = 250.0) -> str:
    """The track as an OpenDRIVE 1.4 document (see the module docstring).

    The loop is cut into `ROADS_MIN` or more roads of at most `max_road_length_m` (whole records each),
    road k's successor being road k + 1 and the last road's the first: CARLA's waypoint graph does not
    follow a road linked to itself, nor a cycle of two roads, but it does follow a cycle of three.

    Args:
        track: the embedded track.
        speed_limit_kmh: the roads' speed limit (CARLA's Traffic Manager reads it), km/h.
        max_road_length_m: longest road piece, m.

    Returns:
        The .xodr text. Road 1 starts at the track's point 0 (s = 0) and the roads run in the track's
        direction; their lengths sum the arc records (a few mm more than `track.length_m`, which sums
        chords).
    """
    geometries = plan_view(track.centre_xy_m, track.heading_rad, closed=True)
    total_m = geometries[-1].s_m + geometries[-1].length_m
    n_roads = max(ROADS_MIN, math.ceil(total_m / max_road_length_m))
    bounds = np.linspace(0, len(geometries), n_roads + 1).round().astype(int).tolist()
    marking = _MARKING_TYPES[track.marking]
    xy = np.asarray(track.centre_xy_m)
    margin = track.road_half_width_m
    north, south = float(xy[:, 1].max()) + margin, float(xy[:, 1].min()) - margin
    east, west = float(xy[:, 0].max()) + margin, float(xy[:, 0].min()) - margin
    lines = [
        '<?xml version="1.0" standalone="yes"?>',
        "<OpenDRIVE>",
        f'  <header revMajor="1" revMinor="4" name={quoteattr(track.name)} version="1.0" north="{north:.3f}"'
        f' south="{south:.3f}" east="{east:.3f}" west="{west:.3f}" vendor="liquid-drive">',
        f"    <geoReference><![CDATA[{_GEO_REFERENCE}]]></geoReference>",
        "  </header>",
    ]
    for k in range(n_roads):
        road_id = k + 1
        lines += _road(
            track,
            road_id,
            geometries[bounds[k] : bounds[k + 1]],
            predecessor=(k - 1) % n_roads + 1,
            successor=(k + 1) % n_roads + 1,
            marking=marking,
            speed_limit_kmh=speed_limit_kmh,
        )
    lines += ["</OpenDRIVE>", ""]
    return "\n".join(lines)


def _road(
    track: Track,
    road_id: int,
    geometries: list[Geometry],
    *,
    predecessor: int,
    successor: int,
    marking: str,
    speed_limit_kmh: float,
) -> list[str]:
    s0 = geometries[0].s_m
    length = geometries[-1].s_m + geometries[-1].length_m - s0
    lines = [
        f'  <road name={quoteattr(f"{track.name}-{road_id}")} length="{length:.9f}" id="{road_id}"'
        ' junction="-1">',
        "    <link>",
        f'      <predecessor elementType="road" elementId="{predecessor}" contactPoint="end"/>',
        f'      <successor elementType="road" elementId="{successor}" contactPoint="start"/>',
        "    </link>",
        f'    <type s="0" type="rural"><speed max="{speed_limit_kmh:g}" unit="km/h"/></type>',
        "    <planView>",
    ]
    for g in geometries:
        shape = "<line/>" if g.curvature_1pm == 0.0 else f'<arc curvature="{g.curvature_1pm:.12e}"/>'
        lines.append(
            f'      <geometry s="{g.s_m - s0:.9f}" x="{g.x_m:.9f}" y="{g.y_m:.9f}" hdg="{g.hdg_rad:.12f}"'
            f' length="{g.length_m:.12f}">{shape}</geometry>'
        )
    lines += [
        "    </planView>",
        '    <elevationProfile><elevation s="0" a="0" b="0" c="0" d="0"/></elevationProfile>',
        "    <lateralProfile/>",
        "    <lanes>",
        f'      <laneOffset s="0" a="{0.5 * track.lane_width_m:.6f}" b="0" c="0" d="0"/>',
        '      <laneSection s="0">',
        "        <left>",
        _lane(1, "shoulder", track.shoulder_m, "none"),
        "        </left>",
        "        <center>",
        f'          <lane id="0" type="none" level="false">{_road_mark(marking)}</lane>',
        "        </center>",
        "        <right>",
        _lane(DRIVING_LANE_ID, "driving", track.lane_width_m, marking),
        _lane(-2, "shoulder", track.shoulder_m, "none"),
        "        </right>",
        "      </laneSection>",
        "    </lanes>",
        "    <objects/>",
        "    <signals/>",
        "  </road>",
    ]
    return lines


def _road_mark(kind: str) -> str:
    if kind == "none":
        return '<roadMark sOffset="0" type="none" weight="standard" color="standard" width="0"/>'
    return (
        f'<roadMark sOffset="0" type="{kind}" weight="standard" color="white" width="0.15"'
        ' laneChange="none"/>'
    )


def _lane(lane_id: int, kind: str, width_m: float, marking: str) -> str:
    # Each lane continues into the same lane of the next road.
    return (
        f'          <lane id="{lane_id}" type="{kind}" level="false">'
        f'<link><predecessor id="{lane_id}"/><successor id="{lane_id}"/></link>'
        f'<width sOffset="0" a="{width_m:.6f}" b="0" c="0" d="0"/>{_road_mark(marking)}</lane>'
    )
