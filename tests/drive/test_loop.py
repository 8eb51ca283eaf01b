"""The closed loop on the real embedded simulator: the expert is never taken over; a zero-curvature
policy is taken over, teleported and counted exactly as an independent geometric computation says; same
seed, same drive; the drive is written as a recording holding the policy's output, hidden state and
saliency."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from drive.closed_loop.drivers import ExpertDriver, PolicyRunner
from drive.closed_loop.loop import EpisodeLimits, run_episode
from sim.embedded.simulator import EmbeddedSimConfig
from sim.embedded.vehicle import VehicleConfig
from sim.perturbations import gaussian_spec
from sim.registry import make_simulator, sim_meta
from sim.safety_driver import SafetyDriverConfig
from sim.tracks.track_gen import make_track

TRACK = "forest"  # the held-out evaluation track: curvy (|κ| up to ~0.05 1/m), narrow, unmarked
SPEED_MPS, DT_S = 8.0, 0.05


class ZeroPolicy:
    """Always drives straight ahead."""

    name = "zero"
    hidden_state = None
    saliency = None

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs, info) -> float:
        return 0.0


# -- an independent computation of the zero policy's drive ------------------------------------------------


class Polyline:
    """The track's centre line as straight segments between its points (not the simulator's arc model:
    the two differ by the sagitta, ≤ 0.5² · κ / 8 ≈ 1.6 mm here), headings interpolated linearly."""

    def __init__(self, track) -> None:
        self.a = np.asarray(track.centre_xy_m)
        self.b = np.roll(self.a, -1, axis=0)
        self.seg = self.b - self.a
        self.seg_len = np.hypot(*self.seg.T)
        self.s0 = np.asarray(track.s_m)
        self.heading = np.asarray(track.heading_rad)
        self.length = float(track.length_m)

    def project(self, p: np.ndarray) -> tuple[float, float, float]:
        """(signed offset left of the line, arc length s, lane heading) of point p."""
        t = np.clip(((p - self.a) * self.seg).sum(1) / self.seg_len**2, 0.0, 1.0)
        foot = self.a + t[:, None] * self.seg
        d = np.hypot(*(p - foot).T)
        i = int(np.argmin(d))
        cross = self.seg[i, 0] * (p[1] - foot[i, 1]) - self.seg[i, 1] * (p[0] - foot[i, 0])
        return math.copysign(d[i], cross), float(self.s0[i] + t[i] * self.seg_len[i]), self._heading(i, t[i])

    def at(self, s: float) -> tuple[np.ndarray, float]:
        """(point, heading) at arc length s."""
        s %= self.length
        i = int(np.searchsorted(self.s0, s, side="right") - 1)
        t = (s - self.s0[i]) / self.seg_len[i]
        return self.a[i] + t * self.seg[i], self._heading(i, t)

    def _heading(self, i: int, t: float) -> float:
        k = (i + 1) % len(self.a)
        dh = (self.heading[k] - self.heading[i] + math.pi) % (2 * math.pi) - math.pi
        return float(self.heading[i] + t * dh)


def zero_policy_by_hand(start_s_m: float, steps: int, max_offset_m: float, max_heading_rad: float):
    """Per step: the car drives a straight line (instant steering, no delay) at 8 m/s; when |offset| or
    |heading error| passes its limit it is put back on the centre line at its projection, heading along
    the lane, and drives straight on from there (no cool-down).

    Returns:
        (takeover frames, offset per frame (the drifted value at a takeover frame), progress at the end,
        the smallest distance of any |offset| from the limit).
    """
    line = Polyline(make_track(TRACK))
    pos, yaw = line.at(start_s_m)
    s_prev, progress = start_s_m, 0.0
    frames, offsets, margin = [], [0.0], math.inf
    for frame in range(1, steps + 1):
        pos = pos + SPEED_MPS * DT_S * np.array([math.cos(yaw), math.sin(yaw)])
        offset, s, lane_heading = line.project(pos)
        heading_error = (yaw - lane_heading + math.pi) % (2 * math.pi) - math.pi
        progress += (s - s_prev + line.length / 2) % line.length - line.length / 2
        s_prev = s
        offsets.append(offset)
        margin = min(margin, abs(abs(offset) - max_offset_m))
        if abs(offset) > max_offset_m or abs(heading_error) > max_heading_rad:
            frames.append(frame)
            pos, yaw = line.at(s)
    return frames, np.array(offsets), progress, margin


def test_zero_curvature_policy_is_taken_over_exactly_as_computed_by_hand():
    start_s_m, steps = 460.0, 300
    safety = SafetyDriverConfig(max_offset_m=1.0, cooldown_s=0.0)
    expected, offsets, progress, margin = zero_policy_by_hand(
        start_s_m, steps, 1.0, safety.max_heading_error_rad
    )
    # The computation is only decisive if no step lands within its ~2 mm model error of the limit.
    assert margin > 0.01
    assert 8 <= len(expected) <= 40
    config = EmbeddedSimConfig(
        track=TRACK,
        render=False,
        start_s_m=start_s_m,
        target_speed_mps=SPEED_MPS,
        vehicle=VehicleConfig(actuation_delay_s=0.0, max_steer_rate_radps=1e6),
    )
    with make_simulator("embedded", config, safety=safety) as sim:
        result = run_episode(sim, ZeroPolicy(), seed=3, limits=EpisodeLimits(max_steps=steps))
        teleports = sim.log

    assert [row["frame"] for row in result.interventions] == expected
    assert result.metrics["interventions"] == len(expected) == len(teleports)
    assert all(row["cause"] == "offset" for row in result.interventions)
    # Each logged offset is the drifted one, past the limit on the outside of the curve...
    np.testing.assert_allclose(
        [r["lateral_offset_m"] for r in result.interventions], offsets[expected], atol=2e-3
    )
    # ...and the frame's telemetry is the teleported car, on the centre line.
    tel = result.telemetry
    np.testing.assert_allclose(tel["lateral_offset_m"][expected], 0.0, atol=1e-6)
    before = [f - 1 for f in expected]
    assert np.all(np.abs(tel["lateral_offset_m"][before]) <= 1.0)
    # Between takeovers every frame matches the straight-line drift.
    drift = np.setdiff1d(np.arange(steps + 1), expected)
    np.testing.assert_allclose(tel["lateral_offset_m"][drift], offsets[drift], atol=2e-3)
    # Metrics follow from the count: per km of progress, and PilotNet's autonomy (6 s per takeover).
    assert result.metrics["distance_m"] == pytest.approx(progress, abs=0.02)
    assert result.metrics["interventions_per_km"] == pytest.approx(
        len(expected) / (progress / 1000), rel=1e-3
    )
    elapsed = steps * DT_S
    assert result.metrics["autonomy_pct"] == pytest.approx(max(0.0, 1 - len(expected) * 6.0 / elapsed) * 100)
    assert np.array_equal(
        np.flatnonzero(tel["intervention"]), expected
    )  # no cool-down: one flagged frame each
    assert np.all(tel["policy_curvature_1pm"] == 0.0)


def test_with_a_cooldown_the_expert_drives_after_each_teleport():
    safety = SafetyDriverConfig(max_offset_m=1.0, cooldown_s=1.0)
    config = EmbeddedSimConfig(track=TRACK, render=False, start_s_m=120.0)
    with make_simulator("embedded", config, safety=safety) as sim:
        result = run_episode(sim, ZeroPolicy(), seed=0, limits=EpisodeLimits(max_steps=300))
    frames = [row["frame"] for row in result.interventions]
    assert len(frames) >= 3
    tel = result.telemetry
    for f in frames:
        # 20 steps of expert driving follow: executed ≠ policy's zero, car near the centre line.
        cool = slice(f + 1, min(f + 21, len(tel["frame"])))
        assert np.all(tel["intervention"][f : cool.stop])
        np.testing.assert_array_equal(tel["curvature_1pm"][cool], tel["expert_curvature_1pm"][cool])
        assert np.all(np.abs(tel["lateral_offset_m"][cool]) < 0.3)
    assert np.diff(frames).min() > 20  # no takeover during a cool-down


def test_expert_drives_a_lap_with_noise_without_interventions():
    config = EmbeddedSimConfig(track=TRACK, condition="winter")
    with make_simulator(
        "embedded", config, safety=SafetyDriverConfig(), perturbations=gaussian_spec(0.3)
    ) as sim:
        result = run_episode(sim, ExpertDriver(), seed=1, limits=EpisodeLimits(laps=1, max_time_s=200.0))
    m = result.metrics
    assert m["interventions"] == 0 and result.interventions == []
    assert m["laps"] == 1 and m["autonomy_pct"] == 100.0
    assert m["distance_m"] == pytest.approx(make_track(TRACK).length_m, abs=1.0)
    assert m["max_abs_offset_m"] < 0.2
    assert np.all(result.telemetry["noise_variance"] == 0.3)  # read from the wrapper chain


def _small_policy():
    from policies.registry import build_policy

    torch.manual_seed(0)
    return build_policy("ncp-ltc")


def test_same_seed_same_drive_and_different_seed_different_start():
    config = EmbeddedSimConfig(track=TRACK)
    runs = []
    for seed in (5, 5, 6):
        with make_simulator(
            "embedded", config, safety=SafetyDriverConfig(), perturbations=gaussian_spec(0.1)
        ) as sim:
            runner = PolicyRunner(_small_policy(), saliency="visual_backprop")
            runs.append(run_episode(sim, runner, seed=seed, limits=EpisodeLimits(max_steps=40)))
    a, b, c = runs
    for key in a.telemetry:
        np.testing.assert_array_equal(a.telemetry[key], b.telemetry[key], err_msg=key)
    np.testing.assert_array_equal(a.hidden, b.hidden)
    np.testing.assert_array_equal(a.saliency, b.saliency)
    assert a.metrics == b.metrics
    assert a.hidden.shape == (41, 19) and a.saliency.shape == (41, 78, 200) and a.saliency.dtype == np.uint8
    assert not np.allclose(a.telemetry["x_m"][:1], c.telemetry["x_m"][:1])


def test_policy_drive_is_recorded_with_hidden_state_and_saliency(tmp_path):
    from recordings.reader import Recording

    config = EmbeddedSimConfig(track=TRACK)
    with make_simulator(
        "embedded", config, safety=SafetyDriverConfig(), perturbations=gaussian_spec(0.2)
    ) as sim:
        runner = PolicyRunner(_small_policy(), saliency="visual_backprop")
        result = run_episode(
            sim,
            runner,
            seed=2,
            limits=EpisodeLimits(max_steps=70),
            record_to=tmp_path / "ep",
            meta=sim_meta("embedded", dataclasses.replace(config), 2),
            keep_frames=True,
        )
    rec = Recording(tmp_path / "ep")
    assert rec.complete and len(rec) == 71
    np.testing.assert_array_equal(rec.frames(), result.frames)
    np.testing.assert_array_equal(rec.array("hidden_state"), result.hidden)
    np.testing.assert_array_equal(rec.array("saliency"), result.saliency)
    table = rec.telemetry
    np.testing.assert_allclose(
        table["policy_curvature_1pm"], result.telemetry["policy_curvature_1pm"], rtol=1e-6
    )
    np.testing.assert_array_equal(table["intervention"], result.telemetry["intervention"])


def test_standardized_noise_reaches_the_policy_not_the_frames():
    # The same seed: identical camera frames, the same noise for any policy, a different drive than clean.
    config = EmbeddedSimConfig(track=TRACK)
    results = {}
    for name, specs in (("clean", []), ("noisy", gaussian_spec(0.3, "standardized"))):
        with make_simulator("embedded", config, perturbations=specs) as sim:
            runner = PolicyRunner(_small_policy())
            results[name] = run_episode(
                sim, runner, seed=3, limits=EpisodeLimits(max_steps=5), keep_frames=True
            )
    clean, noisy = results["clean"], results["noisy"]
    np.testing.assert_array_equal(noisy.frames[0], clean.frames[0])  # frame 0: same state, untouched image
    assert noisy.telemetry["policy_curvature_1pm"][0] != clean.telemetry["policy_curvature_1pm"][0]
    assert np.all(noisy.telemetry["noise_variance"] == 0.3) and np.all(clean.telemetry["noise_variance"] == 0)
    assert noisy.params["wrappers"][0] == {
        "wrapper": "GaussianNoise",
        "name": "gaussian",
        "variance": 0.3,
        "space": "standardized",
    }
