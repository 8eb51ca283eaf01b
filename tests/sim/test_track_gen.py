"""Procedural tracks: bounded curvature, both turn directions, no self-intersection, determinism, names."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.tracks import track_gen
from sim.tracks.track_gen import (
    MAX_CURVATURE_1PM,
    MIN_CLEARANCE_M,
    MIN_REVERSE_CURVATURE_1PM,
    list_tracks,
    make_track,
)

SEEDS = [0, 1, 2, 3, 7, 42, 1234, 99999]


def _segments_intersect(xy: np.ndarray) -> bool:
    """True if any two non-adjacent segments of the closed polyline cross (vectorised orientation test)."""
    a = xy
    b = np.roll(xy, -1, axis=0)
    n = len(a)

    def orient(p, q, r):
        return np.sign(
            (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1])
            - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])
        )

    A, B = a[:, None, :], b[:, None, :]
    C, D = a[None, :, :], b[None, :, :]
    crosses = (orient(A, B, C) != orient(A, B, D)) & (orient(C, D, A) != orient(C, D, B))
    idx = np.arange(n)
    gap = np.abs(idx[:, None] - idx[None, :])
    adjacent = (gap <= 1) | (gap >= n - 1)
    return bool(np.any(crosses & ~adjacent))


def _check_track(track) -> None:
    xy = track.centre_xy_m
    seg = np.hypot(*(np.roll(xy, -1, axis=0) - xy).T)
    assert np.all(np.abs(seg - 0.5) < 0.02), "points ~0.5 m apart, also across the closing segment"
    assert 300.0 <= track.length_m <= 2000.0
    assert track.length_m == pytest.approx(seg.sum())
    # Track.from_centreline's finite differences add a little noise to the analytic bound.
    assert np.abs(track.curvature_1pm).max() <= MAX_CURVATURE_1PM * 1.01
    # Total turning of a simple closed loop is ±2π.
    turning = np.sum(np.angle(np.exp(1j * np.diff(track.heading_rad, append=track.heading_rad[0]))))
    assert abs(abs(turning) - 2 * math.pi) < 1e-6
    assert not _segments_intersect(xy[::4])
    assert track_gen._clearance_m(xy) >= MIN_CLEARANCE_M
    assert track.lane_width_m == pytest.approx(3.5, abs=0.4)


@pytest.mark.parametrize("name", list_tracks())
def test_presets_are_valid_loops(name):
    track = make_track(name)
    assert track.name == name
    _check_track(track)


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_tracks_are_valid_and_turn_both_ways(seed):
    track = make_track(f"seed-{seed}")
    _check_track(track)
    kappa = track.curvature_1pm
    # Non-convex: curves against the loop's own direction too (a left and a right turn).
    direction = np.sign(np.sum(kappa))
    assert (direction * kappa).min() < -MIN_REVERSE_CURVATURE_1PM * 0.99
    assert (direction * kappa).max() > MIN_REVERSE_CURVATURE_1PM


def test_non_oval_presets_have_left_and_right_turns_and_oval_is_convex():
    for name in list_tracks():
        kappa = make_track(name).curvature_1pm
        if name == "oval":
            assert kappa.min() > 0
        else:
            assert kappa.min() < -MIN_REVERSE_CURVATURE_1PM * 0.99 and kappa.max() > 1 / 100


def test_presets_differ_in_marking_and_shape():
    tracks = {name: make_track(name) for name in list_tracks()}
    assert tracks["forest"].marking == "none"
    assert {t.marking for t in tracks.values()} == {"none", "dashed", "solid"}
    lengths = sorted(t.length_m for t in tracks.values())
    assert all(b - a > 10.0 for a, b in zip(lengths, lengths[1:]))


def test_same_name_same_track_and_cached_read_only():
    a = make_track("seed-5")
    assert make_track(5) is a
    with pytest.raises(ValueError):
        a.centre_xy_m[0, 0] = 1.0  # shared through the cache: must not be mutable
    track_gen._make_track_cached.cache_clear()
    b = make_track("seed-5")
    assert b is not a
    for field in ("centre_xy_m", "heading_rad", "curvature_1pm", "s_m"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_different_seeds_differ():
    lengths = {round(make_track(s).length_m, 3) for s in SEEDS}
    assert len(lengths) == len(SEEDS)


def test_seed_tracks_run_both_directions():
    directions = {np.sign(np.sum(make_track(s).curvature_1pm)) for s in range(12)}
    assert directions == {-1.0, 1.0}


@pytest.mark.parametrize("bad", ["ovall", "seed-", "seed--1", "seed-1.5", "", "Forest"])
def test_unknown_names_list_valid_ones(bad):
    with pytest.raises(ValueError, match="valid: oval, country, forest, hills"):
        make_track(bad)


def test_bad_types_and_negative_seeds():
    with pytest.raises(ValueError, match=">= 0"):
        make_track(-1)
    with pytest.raises(ValueError, match="name or an int"):
        make_track(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name or an int"):
        make_track(True)  # type: ignore[arg-type]


@pytest.mark.slow
def test_many_seeds_are_valid():
    for seed in range(100, 160):
        _check_track(make_track(seed))
