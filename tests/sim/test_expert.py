"""The pure-pursuit expert and the recovery perturbation schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.embedded.vehicle import Vehicle, VehicleConfig
from sim.expert import ExpertConfig, PerturbationConfig, PurePursuitExpert, RecoveryPerturbation
from sim.tracks.geometry import TrackLocator
from sim.tracks.track import Track
from sim.tracks.track_gen import make_track


def _circle(radius_m: float, clockwise: bool = False) -> Track:
    n = int(round(2 * math.pi * radius_m / 0.5))
    theta = np.arange(n) * 2 * math.pi / n
    xy = np.stack([radius_m * np.cos(theta), radius_m * np.sin(theta)], axis=1)
    return Track.from_centreline("circle", xy[::-1] if clockwise else xy)


@pytest.mark.parametrize("radius_m,clockwise", [(30.0, False), (60.0, True)])
def test_on_a_circle_the_expert_commands_its_curvature(radius_m, clockwise):
    expert = PurePursuitExpert(_circle(radius_m, clockwise))
    loc = expert.locator
    sign = -1.0 if clockwise else 1.0
    for s in (0.0, 33.3, 100.0):
        for speed in (2.0, 8.0, 20.0):
            kappa = expert.curvature_1pm(loc.pose_at(s), speed)
            assert kappa == pytest.approx(sign / radius_m, rel=1e-3)


def test_expert_steers_back_towards_the_centre():
    track = make_track("oval")
    loc = TrackLocator(track)
    expert = PurePursuitExpert(track, locator=loc)
    s = 300.0
    road = loc.point_at(s).curvature_1pm
    assert expert.curvature_1pm(loc.pose_at(s, 1.0), 8.0) < road - 0.02  # left of centre: steer right
    assert expert.curvature_1pm(loc.pose_at(s, -1.0), 8.0) > road + 0.02
    assert expert.curvature_1pm(loc.pose_at(s, 0.0, 0.2), 8.0) < road  # yawed left: steer right
    # act() reads the simulator's info dict; s_m there only saves a search.
    pose = loc.pose_at(s, 0.4, -0.05)
    info = {"pose": pose, "speed_mps": 8.0, "s_m": loc.locate(pose).s_m}
    assert expert.act(info) == pytest.approx(expert.curvature_1pm(pose, 8.0))


def test_lookahead_grows_with_speed():
    expert = PurePursuitExpert(make_track("oval"), ExpertConfig(lookahead_min_m=4.0, lookahead_time_s=0.5))
    assert expert.lookahead_m(0.0) == 4.0
    assert expert.lookahead_m(20.0) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="lookahead_min_m"):
        ExpertConfig(lookahead_min_m=0.0)


def test_expert_recovers_from_an_offset_start_through_the_vehicle_model():
    track = make_track("forest")
    loc = TrackLocator(track)
    expert = PurePursuitExpert(track, locator=loc)
    vehicle = Vehicle(VehicleConfig())
    vehicle.reset(loc.pose_at(50.0, 1.2, -0.1), speed_mps=8.0)
    offsets = []
    for _ in range(200):  # 10 s
        lane = loc.locate(vehicle.state.pose)
        offsets.append(lane.lateral_offset_m)
        vehicle.command(expert.curvature_1pm(vehicle.state.pose, vehicle.state.speed_mps, lane.s_m))
        vehicle.step(8.0, 4)
    offsets = np.abs(offsets)
    assert offsets.max() < 1.3  # no big overshoot on the way back
    assert offsets[-60:].max() < 0.1  # settled on the centre line within 7 s


def test_perturbation_schedule_is_pulses_within_configured_ranges():
    cfg = PerturbationConfig(gap_s=(1.0, 2.0), duration_s=(0.5, 1.0), magnitude_1pm=(0.02, 0.03))
    pert = RecoveryPerturbation(cfg, seed=3)
    dt = 0.05
    values = np.array([pert.offset_1pm(k * dt) for k in range(4000)])  # 200 s
    active = values != 0.0
    assert not active[0]
    assert np.all((np.abs(values[active]) >= 0.02) & (np.abs(values[active]) <= 0.03))
    edges = np.flatnonzero(np.diff(active.astype(int)))
    runs = np.diff(np.concatenate([[0], edges + 1, [len(values)]])) * dt
    first_is_on = active[0]
    on_runs = runs[int(not first_is_on) :: 2][:-1]
    off_runs = runs[int(first_is_on) :: 2][1:-1]
    assert on_runs.min() >= 0.5 - dt - 1e-9 and on_runs.max() <= 1.0 + dt + 1e-9
    assert off_runs.min() >= 1.0 - dt - 1e-9 and off_runs.max() <= 2.0 + dt + 1e-9
    assert np.any(values > 0) and np.any(values < 0)  # both signs
    # Within one pulse the value is constant.
    starts = np.flatnonzero(np.diff(active.astype(int)) == 1) + 1
    for a in starts[:5]:
        b = a + int(np.argmin(active[a:]))
        assert np.all(values[a:b] == values[a])


def test_perturbation_is_reproducible_from_its_seed_and_differs_across_seeds():
    times = np.arange(0, 60, 0.05)
    p1, p2, p3 = RecoveryPerturbation(seed=7), RecoveryPerturbation(seed=7), RecoveryPerturbation(seed=8)
    a = np.array([p1.offset_1pm(t) for t in times])
    b = np.array([p2.offset_1pm(t) for t in times])
    c = np.array([p3.offset_1pm(t) for t in times])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    p1.reset(7)  # reset restarts the same schedule
    np.testing.assert_array_equal([p1.offset_1pm(t) for t in times], a)
    p1.reset(np.random.default_rng(7))  # a Generator works as the seed too
    np.testing.assert_array_equal([p1.offset_1pm(t) for t in times], a)


def test_perturbation_is_timed_in_sim_time_not_calls():
    # Sparse queries see the same schedule as dense ones at the shared times.
    dense, sparse = RecoveryPerturbation(seed=1), RecoveryPerturbation(seed=1)
    times = np.arange(0, 60, 0.05)
    d = {round(t, 6): dense.offset_1pm(t) for t in times}
    for t in times[::7]:
        assert sparse.offset_1pm(t) == d[round(t, 6)]


def test_perturbation_rejects_time_going_backwards_and_bad_config():
    pert = RecoveryPerturbation(seed=0)
    pert.offset_1pm(1.0)
    with pytest.raises(ValueError, match="backwards"):
        pert.offset_1pm(0.5)
    with pytest.raises(ValueError, match="duration_s"):
        PerturbationConfig(duration_s=(1.0, 0.5))
    with pytest.raises(ValueError, match="time must advance"):
        PerturbationConfig(gap_s=(0.0, 1.0), duration_s=(0.0, 1.0))
