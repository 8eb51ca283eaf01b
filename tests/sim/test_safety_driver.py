"""The safety driver counts and responds exactly as a hand computation says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.perturbations import GaussianNoise
from sim.safety_driver import SafetyDriver, SafetyDriverConfig
from sim.types import Command
from tests.sim.fakes import FakeSim

SPEED, DT, ROAD = 10.0, 0.05, 0.02  # m/s, s, 1/m


def _hand_count(steps: int, cooldown_steps: int, max_offset_m: float) -> list[int]:
    """Frames at which a zero-curvature driver on a constant curve of ROAD 1/m gets taken over.

    After a teleport to the lane centre the expert (curvature = ROAD, offset and heading 0) holds the
    car exactly on the centre line, so every cycle is: drift until |offset| > max, teleport, cooldown.
    """
    ds = SPEED * DT
    frames, heading, offset, hold = [], 0.0, 0.0, 0
    for frame in range(1, steps + 1):
        command = ROAD if hold > 0 else 0.0
        hold = max(0, hold - 1)
        heading += (command - ROAD) * ds
        offset += math.sin(heading) * ds
        if hold == 0 and command == 0.0 and abs(offset) > max_offset_m:
            frames.append(frame)
            heading, offset, hold = 0.0, 0.0, cooldown_steps
    return frames


def _drive(sim, steps: int, curvature: float = 0.0):
    obs, info = sim.reset(seed=0)
    infos = [info]
    for _ in range(steps):
        obs, info = sim.step(Command(curvature))
        infos.append(info)
    return infos


def test_zero_policy_on_a_curve_is_taken_over_as_computed_by_hand():
    config = SafetyDriverConfig(max_offset_m=1.0, cooldown_s=1.0, max_heading_error_rad=math.pi)
    sim = SafetyDriver(FakeSim(road_1pm=ROAD), config, context={"noise_variance": 0.0})
    infos = _drive(sim, 400)
    expected = _hand_count(400, cooldown_steps=20, max_offset_m=1.0)
    assert len(expected) >= 3
    assert [row.frame for row in sim.log] == expected
    assert all(row.cause == "offset" and row.context == {"noise_variance": 0.0} for row in sim.log)
    assert sim.unwrapped.teleports and len(sim.unwrapped.teleports) == len(expected)
    fired = [i for i, info in enumerate(infos) if info["intervention"]]
    assert fired == expected and infos[-1]["interventions"] == len(expected)
    # The 20 steps after each takeover are driven by the expert.
    first = expected[0]
    assert [infos[first + k]["autonomous"] for k in range(1, 22)] == [False] * 20 + [True]
    assert all(abs(infos[first + k]["lateral_offset_m"]) < 1e-12 for k in range(0, 21))


def test_expert_policy_is_never_taken_over():
    sim = SafetyDriver(FakeSim(road_1pm=ROAD))
    sim.reset(seed=0)
    info = sim._last_info
    for _ in range(300):
        _, info = sim.step(Command(info["expert_curvature_1pm"]))
    assert sim.log == []


def test_takeover_response_drives_from_where_the_car_is():
    config = SafetyDriverConfig(response="takeover", takeover_s=2.0, max_heading_error_rad=math.pi)
    sim = SafetyDriver(FakeSim(road_1pm=ROAD), config)
    infos = _drive(sim, 200)
    assert sim.log and not sim.unwrapped.teleports
    first = sim.log[0].frame
    assert abs(infos[first]["lateral_offset_m"]) > 1.0  # not moved back
    assert [infos[first + k]["autonomous"] for k in range(1, 42)] == [False] * 40 + [True]


def test_heading_and_stuck_triggers():
    sim = SafetyDriver(FakeSim(road_1pm=0.3), SafetyDriverConfig(max_offset_m=50.0, trigger_off_road=False))
    _drive(sim, 60)
    assert sim.log[0].cause == "heading"
    slow = FakeSim(speed_mps=0.1)
    sim = SafetyDriver(slow, SafetyDriverConfig(stuck_time_s=1.0))
    _drive(sim, 30)
    assert [r.cause for r in sim.log] == ["stuck"] and sim.log[0].time_s == pytest.approx(1.05)


def test_must_sit_inside_perturbations():
    with pytest.raises(ValueError, match="directly"):
        SafetyDriver(GaussianNoise(FakeSim(), 0.1))
    noisy = GaussianNoise(SafetyDriver(FakeSim(road_1pm=ROAD)), 0.1)
    obs, _ = noisy.reset(seed=0)
    assert obs.image.std() > 0  # the noise applies on top
    assert noisy.chain()[1]["wrapper"] == "SafetyDriver"
    with pytest.raises(ValueError, match="response"):
        SafetyDriverConfig(response="brake")
    assert np.isfinite(noisy.chain()[1]["max_offset_m"])
