"""The bicycle model and its actuators: circles, steering limits, delay, speed control."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.embedded.vehicle import PHYSICS_DT_S, Vehicle, VehicleConfig
from sim.types import Pose


def _drive(vehicle: Vehicle, curvature_1pm: float, speed_mps: float, substeps: int, every: int = 4):
    """Command `curvature_1pm` every `every` sub-steps; return (x, y, yaw, steer) after each sub-step."""
    out = []
    for k in range(substeps):
        if k % every == 0:
            vehicle.command(curvature_1pm)
        vehicle.step(speed_mps, 1)
        st = vehicle.state
        out.append((st.x_m, st.y_m, st.yaw_rad, st.steer_rad))
    return np.array(out)


@pytest.mark.parametrize("curvature_1pm", [1 / 20, -1 / 40, 0.12])
def test_constant_curvature_drives_a_circle(curvature_1pm):
    vehicle = Vehicle(VehicleConfig())
    vehicle.reset(Pose(0.0, 0.0, 0.3), speed_mps=8.0)
    _drive(vehicle, curvature_1pm, 8.0, 400)  # settle: delay + steering ramp
    path = _drive(vehicle, curvature_1pm, 8.0, 800)
    xy = path[:, :2]
    # Centre of curvature from the last pose: 1/κ to the left (κ > 0) of the heading.
    x, y, yaw = path[-1, :3]
    cx, cy = x - math.sin(yaw) / curvature_1pm, y + math.cos(yaw) / curvature_1pm
    radii = np.hypot(xy[:, 0] - cx, xy[:, 1] - cy)
    assert radii == pytest.approx(abs(1 / curvature_1pm), rel=1e-6)
    assert vehicle.curvature_1pm == pytest.approx(curvature_1pm, rel=1e-9)
    # Yaw rate / speed is the curvature (left positive); reset started the speed controller in balance.
    assert vehicle.state.speed_mps == pytest.approx(8.0, abs=1e-6)
    dyaw = np.angle(np.exp(1j * np.diff(path[:, 2])))
    assert np.mean(dyaw) / (8.0 * PHYSICS_DT_S) == pytest.approx(curvature_1pm, rel=1e-6)


def test_curvature_beyond_steering_limit_is_clipped():
    cfg = VehicleConfig()
    vehicle = Vehicle(cfg)
    vehicle.reset(Pose(0, 0, 0), speed_mps=3.0)
    _drive(vehicle, 5.0, 3.0, 200)
    assert vehicle.state.steer_rad == pytest.approx(cfg.max_steer_rad)
    assert vehicle.curvature_1pm == pytest.approx(cfg.max_curvature_1pm)
    assert cfg.steer_for_curvature(-5.0) == pytest.approx(-cfg.max_steer_rad)


def test_steering_rate_limit_is_respected():
    cfg = VehicleConfig(max_steer_rate_radps=0.5, actuation_delay_s=0.0)
    vehicle = Vehicle(cfg)
    vehicle.reset(Pose(0, 0, 0), speed_mps=5.0)
    steer = [0.0]
    for k in range(400):  # full left, then full right: the wheels ramp at the limit
        steer.append(_drive(vehicle, 0.25 if k < 150 else -0.25, 5.0, 1, every=1)[-1, 3])
    rate = np.abs(np.diff(steer)) / PHYSICS_DT_S
    assert rate.max() <= 0.5 + 1e-9
    assert rate.max() == pytest.approx(0.5)  # and it is reached: the ramp is not slower than needed
    target = math.atan(2.7 * 0.25)
    first = next(i for i, s in enumerate(steer) if s >= target - 1e-12)
    assert first * PHYSICS_DT_S == pytest.approx(target / 0.5, abs=PHYSICS_DT_S)


def test_actuation_delay_delays_the_command():
    for delay_s in (0.0, 0.1, 0.25):
        vehicle = Vehicle(VehicleConfig(actuation_delay_s=delay_s))
        vehicle.reset(Pose(0, 0, 0), speed_mps=5.0)
        vehicle.command(0.05)
        steer = []
        for _ in range(60):
            vehicle.step(5.0, 1)
            steer.append(vehicle.state.steer_rad)
        first_move = next(i for i, s in enumerate(steer) if s != 0.0)
        # The wheels start turning in the sub-step that begins at t = delay.
        assert first_move == round(delay_s / PHYSICS_DT_S)


def test_delay_keeps_command_order_and_last_command_wins():
    vehicle = Vehicle(VehicleConfig(actuation_delay_s=0.05, max_steer_rate_radps=100.0))
    vehicle.reset(Pose(0, 0, 0), speed_mps=5.0)
    seen = []
    for kappa in (0.01, 0.02, 0.03, 0.0, 0.0, 0.0):
        vehicle.command(kappa)
        vehicle.step(5.0, 4)
        seen.append(round(vehicle.curvature_1pm, 9))
    assert seen == [0.0, 0.01, 0.02, 0.03, 0.0, 0.0]


@pytest.mark.parametrize("target_mps", [4.47, 8.0, 15.0])
def test_speed_pid_reaches_target_from_rest(target_mps):
    vehicle = Vehicle(VehicleConfig())
    vehicle.reset(Pose(0, 0, 0), speed_mps=0.0)
    speeds = []
    for _ in range(int(30.0 / PHYSICS_DT_S)):
        vehicle.step(target_mps, 1)
        speeds.append(vehicle.state.speed_mps)
    speeds = np.array(speeds)
    assert speeds[-1] == pytest.approx(target_mps, abs=0.02)  # integral term beats resistance
    assert speeds.max() < target_mps + 0.15  # little overshoot (anti-windup)
    assert np.abs(np.diff(speeds)).max() / PHYSICS_DT_S <= VehicleConfig().max_accel_mps2 + 1e-9


def test_speed_never_negative_when_braking_to_zero():
    vehicle = Vehicle(VehicleConfig())
    vehicle.reset(Pose(0, 0, 0), speed_mps=10.0)
    for _ in range(800):
        vehicle.step(0.0, 1)
        assert vehicle.state.speed_mps >= 0.0
    assert vehicle.state.speed_mps == pytest.approx(0.0, abs=0.05)


def test_reset_and_teleport():
    vehicle = Vehicle(VehicleConfig())
    vehicle.reset(Pose(1.0, 2.0, 0.5), speed_mps=6.0, curvature_1pm=0.02)
    assert vehicle.curvature_1pm == pytest.approx(0.02)  # wheels already set
    vehicle.command(-0.05)
    vehicle.step(6.0, 4)
    t = vehicle.time_s
    vehicle.teleport(Pose(10.0, 0.0, 0.0), curvature_1pm=0.0)
    vehicle.step(6.0, 20)  # the queued -0.05 was dropped: the car drives straight
    assert vehicle.state.y_m == pytest.approx(0.0, abs=1e-12)
    assert vehicle.time_s == pytest.approx(t + 20 * PHYSICS_DT_S)


def test_bad_config_and_commands():
    with pytest.raises(ValueError, match="wheelbase_m"):
        VehicleConfig(wheelbase_m=0.0)
    with pytest.raises(ValueError, match="actuation_delay_s"):
        VehicleConfig(actuation_delay_s=-0.1)
    with pytest.raises(ValueError, match="max_steer_rad"):
        VehicleConfig(max_steer_rad=2.0)
    with pytest.raises(ValueError, match="dt_s"):
        Vehicle(VehicleConfig(), dt_s=0.0)
    with pytest.raises(ValueError, match="finite"):
        Vehicle(VehicleConfig()).command(float("nan"))
