"""Route planning on a `carla.Map`: a closed loop of lanes, sampled densely into a `Track` in our frame.

CARLA's own planner (`agents.navigation`) is not in the client wheel, so this is ours. The lanes of the
map form a directed graph: a node is a lane (road, section, lane id), an edge goes to each lane it flows
into (`Map.get_topology()`: lane start → successor lane start). The route is the shortest cycle through
the lane the car starts on (Dijkstra over lane lengths), so it is a loop like an embedded track: laps,
progress and the safety driver's teleport all work the same way, and the expert, `TrackLocator` and the
privileged info are the embedded simulator's own code on the route's `Track`.

The loop is sampled at equal arc-length steps (≈`spacing_m`) with `Waypoint.next(d)` along each lane's
centre, converted to our frame at the edge (y and yaw flipped, `sim/carla/frames.py`); heading and
curvature then come from `Track.from_centreline`, exactly as for an embedded track. Equal steps matter:
a short segment next to a long one would bias the central-difference heading.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from sim.carla.frames import carla_transform, xy_from_carla, yaw_from_carla
from sim.tracks.geometry import wrap_angle
from sim.tracks.track import Track
from sim.types import Pose

LaneKey = tuple[int, int, int]
"""A lane of the map: (road id, lane-section id, lane id)."""

NodeT = TypeVar("NodeT", bound=Hashable)

_MARKINGS = {"Solid": "solid", "SolidSolid": "solid", "SolidBroken": "solid", "BrokenSolid": "solid"}


@dataclass(frozen=True)
class Route:
    """A closed route along lane centres.

    Attributes:
        track: the loop in our frame (x east, y north, left positive), a `Track` like an embedded one:
            its `s_m` is the route's arc length from the start lane's entry.
        z_m: (N,) height of the road at each track point (CARLA's z), m.
        lane_width_m: (N,) width of the lane at each track point, m.
        lanes: the lanes of the loop in driving order.
    """

    track: Track
    z_m: np.ndarray
    lane_width_m: np.ndarray
    lanes: tuple[LaneKey, ...]


def lane_key(waypoint: Any) -> LaneKey:
    """The lane a waypoint is on."""
    return (int(waypoint.road_id), int(waypoint.section_id), int(waypoint.lane_id))


def shortest_cycle(
    start: NodeT, successors: Callable[[NodeT], Iterable[NodeT]], length: Callable[[NodeT], float]
) -> list[NodeT]:
    """The shortest cycle through `start` in a directed graph whose nodes have lengths.

    Args:
        start: the node the cycle must contain.
        successors: the nodes reachable in one step from a node.
        length: a node's length (the cost of passing it), > 0.

    Returns:
        The nodes of the cycle in order, beginning with `start` (the last one leads back to it).

    Raises:
        ValueError: no cycle passes through `start`.
    """
    counter = itertools.count()  # tie-breaker: nodes need not be comparable
    heap = [(length(start), next(counter), nxt, start) for nxt in successors(start)]
    heapq.heapify(heap)
    parent: dict[NodeT, NodeT] = {}
    while heap:
        dist, _, node, prev = heapq.heappop(heap)
        if node in parent:
            continue
        parent[node] = prev
        if node == start:
            break
        for nxt in successors(node):
            if nxt not in parent:
                heapq.heappush(heap, (dist + length(node), next(counter), nxt, node))
    else:
        raise ValueError(f"no closed route passes through {start!r}")
    cycle = [parent[start]]
    while cycle[-1] != start:
        cycle.append(parent[cycle[-1]])
    return cycle[::-1]


class LaneGraph:
    """The driving lanes of a `carla.Map` and how they connect.

    Args:
        carla_map: the map (a real `carla.Map`, also one built offline from OpenDRIVE text).
    """

    def __init__(self, carla_map: Any) -> None:
        self.entries: dict[LaneKey, Any] = {}
        self.successors: dict[LaneKey, list[LaneKey]] = {}
        for entry, successor in carla_map.get_topology():
            a, b = lane_key(entry), lane_key(successor)
            self.entries.setdefault(a, entry)
            self.entries.setdefault(b, successor)
            targets = self.successors.setdefault(a, [])
            if b != a and b not in targets:  # a == b: a dead end (lane start -> its own end)
                targets.append(b)
        self._lengths: dict[LaneKey, float] = {}

    def length_m(self, key: LaneKey) -> float:
        """Length of a lane from its entry to its end, m."""
        if key not in self._lengths:
            entry = self.entries[key]
            end = entry.next_until_lane_end(1.0)[-1] if entry.next_until_lane_end(1.0) else entry
            self._lengths[key] = max(abs(float(end.s) - float(entry.s)), 1e-3)
        return self._lengths[key]

    def cycle_through(self, key: LaneKey) -> list[LaneKey]:
        """The shortest loop of lanes through lane `key` (see `shortest_cycle`)."""
        if key not in self.entries:
            raise ValueError(f"lane {key} is not a driving lane of the map's topology")
        return shortest_cycle(key, lambda k: self.successors.get(k, ()), self.length_m)


def closed_route(
    carla_map: Any,
    start: Any,
    *,
    name: str,
    spacing_m: float = 0.5,
    shoulder_m: float = 0.5,
) -> Route:
    """The shortest closed route through the lane of waypoint `start`, sampled into a `Track`.

    Args:
        carla_map: the map.
        start: a waypoint on the lane the route must contain; the route's s = 0 is that lane's entry.
        name: the route's track name (for metadata).
        spacing_m: target distance between route points, m.
        shoulder_m: the track's shoulder (paved margin beside the lane, used by `on_road`), m.

    Returns:
        The route; its points are `length / round(length / spacing_m)` apart.
    """
    graph = LaneGraph(carla_map)
    lanes = graph.cycle_through(lane_key(start))
    lengths = np.array([graph.length_m(k) for k in lanes])
    starts = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
    total_m = float(lengths.sum())
    n = max(8, round(total_m / spacing_m))
    xy = np.empty((n, 2))
    z = np.empty(n)
    widths = np.empty(n)
    for i, s in enumerate(np.arange(n) * (total_m / n)):
        j = int(np.searchsorted(starts, s, side="right") - 1)
        wp = _along_lane(graph.entries[lanes[j]], float(s - starts[j]))
        loc = wp.transform.location
        xy[i] = xy_from_carla(loc)
        z[i] = float(loc.z)
        widths[i] = float(wp.lane_width)
    marking = _MARKINGS.get(str(getattr(start.right_lane_marking, "type", "Broken")).split(".")[-1], "dashed")
    if str(getattr(start.right_lane_marking, "type", "")).split(".")[-1] == "NONE":
        marking = "none"
    track = Track.from_centreline(
        name, xy, lane_width_m=float(np.median(widths)), shoulder_m=shoulder_m, marking=marking
    )
    return Route(track=track, z_m=z, lane_width_m=widths, lanes=tuple(lanes))


def waypoint_lane_position(carla_map: Any, pose: Pose) -> tuple[float, float, float]:
    """Where `pose` is relative to the centre of the driving lane CARLA's map finds nearest.

    `Map.get_waypoint` returns a lane-centre point near the projection, not exactly at it (a few cm
    along the lane: ~0.15° of heading on a 20 m radius), so the waypoint is moved once along the lane
    by the pose's along-lane distance from it, which makes it the projection to well under a millimetre.

    Args:
        carla_map: the map.
        pose: a pose in our frame.

    Returns:
        (lateral offset m, left positive; heading error rad, left positive; lane width m).
    """
    location = carla_transform(pose).location
    wp = carla_map.get_waypoint(location)
    for _ in range(2):
        forward = wp.transform.get_forward_vector()
        d = location - wp.transform.location
        along = d.x * forward.x + d.y * forward.y
        if abs(along) < 1e-4:
            break
        moved = wp.next(along) if along > 0 else wp.previous(-along)
        if not moved:
            break
        wp = moved[0]
    right = wp.transform.get_right_vector()
    d = location - wp.transform.location
    offset = -(d.x * right.x + d.y * right.y)  # CARLA's right vector points right: left is minus
    heading_error = wrap_angle(pose.yaw_rad - yaw_from_carla(wp.transform.rotation.yaw))
    return offset, heading_error, float(wp.lane_width)


def _along_lane(entry: Any, distance_m: float) -> Any:
    """The waypoint `distance_m` after a lane's entry, on the same lane."""
    if distance_m <= 1e-9:
        return entry
    candidates = entry.next(distance_m)
    if not candidates:
        raise ValueError(f"lane {lane_key(entry)} ends before {distance_m:.3f} m")
    same = [w for w in candidates if lane_key(w) == lane_key(entry)]
    return (same or candidates)[0]
