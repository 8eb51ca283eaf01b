"""A closed track: the centre line of one driving lane, sampled densely, with its geometry.

The embedded simulator's track generator (`sim/tracks/track_gen.py`) builds these from a seed or a preset; the
renderer, the vehicle's privileged info and the pure-pursuit expert all read this one representation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Track:
    """A closed lane centre line in the world frame (x east, y north), driven counter-clockwise or not.

    Attributes:
        name: preset name or "seed-<n>".
        centre_xy_m: (N, 2) float64 lane-centre points, about `spacing_m` apart; the last point connects
            back to the first (closed loop, the first point is not repeated).
        heading_rad: (N,) direction of travel at each point, rad, counter-clockwise from +x.
        curvature_1pm: (N,) signed curvature of the centre line, 1/m, left positive.
        s_m: (N,) arc length from point 0, m.
        length_m: total length of the loop, m.
        lane_width_m: width of the driving lane, m; the lane is centred on `centre_xy_m`.
        shoulder_m: paved width beyond each lane edge, m (the road surface is lane + 2 shoulders).
        marking: lane-edge markings, "solid", "dashed" or "none" (the paper's unmarked test track).
        scenery_seed: seed of roadside details (trees, their shadows), so they are a property of the track.
    """

    name: str
    centre_xy_m: np.ndarray
    heading_rad: np.ndarray
    curvature_1pm: np.ndarray
    s_m: np.ndarray
    length_m: float
    lane_width_m: float = 3.5
    shoulder_m: float = 0.5
    marking: str = "dashed"
    scenery_seed: int = 0
    extras: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def road_half_width_m(self) -> float:
        """Half the width of the paved surface (lane + shoulders), m."""
        return 0.5 * self.lane_width_m + self.shoulder_m

    @classmethod
    def from_centreline(
        cls,
        name: str,
        centre_xy_m: np.ndarray,
        *,
        lane_width_m: float = 3.5,
        shoulder_m: float = 0.5,
        marking: str = "dashed",
        scenery_seed: int = 0,
    ) -> Track:
        """Build a track from closed centre-line points (M, 2), m; heading, curvature and arc length are
        derived by central differences on the closed loop. Points should be dense (≤ 1 m apart) and
        smooth; the first point must not be repeated at the end."""
        xy = np.asarray(centre_xy_m, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) < 8:
            raise ValueError(f"centre_xy_m must be (M >= 8, 2), got {xy.shape}")
        if marking not in ("solid", "dashed", "none"):
            raise ValueError(f"marking must be 'solid', 'dashed' or 'none', got {marking!r}")
        seg = np.roll(xy, -1, axis=0) - xy
        seg_len = np.hypot(seg[:, 0], seg[:, 1])
        if np.any(seg_len <= 0):
            raise ValueError("centre_xy_m has repeated consecutive points")
        s = np.concatenate([[0.0], np.cumsum(seg_len)[:-1]])
        length = float(seg_len.sum())
        d1 = (np.roll(xy, -1, axis=0) - np.roll(xy, 1, axis=0)) / ((np.roll(seg_len, 1) + seg_len)[:, None])
        heading = np.arctan2(d1[:, 1], d1[:, 0])
        dh = np.angle(np.exp(1j * (np.roll(heading, -1) - np.roll(heading, 1))))
        curvature = dh / (np.roll(seg_len, 1) + seg_len)
        return cls(
            name=name,
            centre_xy_m=xy,
            heading_rad=heading,
            curvature_1pm=curvature,
            s_m=s,
            length_m=length,
            lane_width_m=lane_width_m,
            shoulder_m=shoulder_m,
            marking=marking,
            scenery_seed=scenery_seed,
        )
