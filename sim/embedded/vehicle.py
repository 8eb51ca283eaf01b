"""Kinematic bicycle vehicle with steering-rate limit, actuation delay and a longitudinal speed PID.

The reference point is the centre of the rear axle: its path curvature is exactly tan(δ)/wheelbase
for steering angle δ, so a curvature command κ maps to δ = atan(wheelbase · κ) and a held command
drives a circle of radius 1/κ. Physics runs in fixed sub-steps (`dt_s`, 12.5 ms by default: 4 per
20 Hz control step); time is counted in whole sub-steps, so delays are exact and runs reproducible.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from sim.types import Pose

PHYSICS_DT_S = 0.0125
"""Default physics sub-step, s (4 per 0.05 s control step)."""


@dataclass(frozen=True)
class VehicleConfig:
    """Vehicle geometry, actuator limits and speed controller.

    Attributes:
        wheelbase_m: distance between axles, m.
        width_m: body width, m (on-road test uses half of it).
        max_steer_rad: road-wheel steering limit, rad (35°).
        max_steer_rate_radps: road-wheel steering rate limit, rad/s (0.6 rad/s is about 500°/s at a
            15:1 steering wheel: brisk human steering).
        actuation_delay_s: time from a curvature command to the steering actuator acting on it, s;
            rounded to whole physics sub-steps.
        speed_kp: speed PID proportional gain, (m/s²)/(m/s).
        speed_ki: integral gain, (m/s²)/m.
        speed_kd: derivative gain on measured acceleration, s (dimensionless ratio of accelerations).
        max_accel_mps2: strongest drive acceleration the PID may ask for, m/s².
        max_decel_mps2: strongest braking, m/s² (positive number).
        rolling_resistance_mps2: constant deceleration while moving, m/s².
        drag_1pm: aerodynamic deceleration coefficient: a_drag = drag_1pm · v², 1/m.
    """

    wheelbase_m: float = 2.7
    width_m: float = 1.8
    max_steer_rad: float = math.radians(35.0)
    max_steer_rate_radps: float = 0.6
    actuation_delay_s: float = 0.1
    speed_kp: float = 2.0
    speed_ki: float = 0.5
    speed_kd: float = 0.0
    max_accel_mps2: float = 3.0
    max_decel_mps2: float = 6.0
    rolling_resistance_mps2: float = 0.15
    drag_1pm: float = 4e-4

    def __post_init__(self) -> None:
        positive = ("wheelbase_m", "width_m", "max_steer_rad", "max_steer_rate_radps", "max_accel_mps2")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"VehicleConfig.{name} must be > 0, got {getattr(self, name)}")
        non_negative = (
            "actuation_delay_s",
            "speed_kp",
            "speed_ki",
            "speed_kd",
            "max_decel_mps2",
            "rolling_resistance_mps2",
            "drag_1pm",
        )
        for name in non_negative:
            if not getattr(self, name) >= 0:
                raise ValueError(f"VehicleConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.max_steer_rad >= math.pi / 2:
            raise ValueError(f"VehicleConfig.max_steer_rad must be < π/2, got {self.max_steer_rad}")

    @property
    def max_curvature_1pm(self) -> float:
        """Tightest path curvature the steering allows, 1/m."""
        return math.tan(self.max_steer_rad) / self.wheelbase_m

    def steer_for_curvature(self, curvature_1pm: float) -> float:
        """Steering angle for a path curvature, clipped to the steering limit, rad."""
        steer = math.atan(self.wheelbase_m * curvature_1pm)
        return min(max(steer, -self.max_steer_rad), self.max_steer_rad)


@dataclass
class VehicleState:
    """Mutable state of the rear-axle reference point.

    Attributes:
        x_m, y_m: position, m. yaw_rad: heading, counter-clockwise from +x, rad.
        speed_mps: forward speed (≥ 0), m/s. steer_rad: road-wheel angle, left positive, rad.
        accel_mps2: acceleration over the last sub-step, m/s².
    """

    x_m: float
    y_m: float
    yaw_rad: float
    speed_mps: float = 0.0
    steer_rad: float = 0.0
    accel_mps2: float = 0.0

    @property
    def pose(self) -> Pose:
        return Pose(self.x_m, self.y_m, self.yaw_rad)


class Vehicle:
    """The bicycle model plus its actuators; advanced by `step` in whole physics sub-steps.

    Args:
        config: vehicle parameters.
        dt_s: physics sub-step, s.
    """

    def __init__(self, config: VehicleConfig, dt_s: float = PHYSICS_DT_S) -> None:
        if not dt_s > 0:
            raise ValueError(f"dt_s must be > 0, got {dt_s}")
        self.config = config
        self.dt_s = float(dt_s)
        self.delay_ticks = int(round(config.actuation_delay_s / self.dt_s))
        self.state = VehicleState(0.0, 0.0, 0.0)
        self.ticks = 0
        self._queue: deque[tuple[int, float]] = deque()  # (tick it takes effect, steer target rad)
        self._steer_target_rad = 0.0
        self._integral = 0.0
        self._prev_speed_mps = 0.0

    @property
    def time_s(self) -> float:
        """Simulation time since reset, s."""
        return self.ticks * self.dt_s

    @property
    def curvature_1pm(self) -> float:
        """Path curvature the wheels produce now, 1/m."""
        return math.tan(self.state.steer_rad) / self.config.wheelbase_m

    def reset(self, pose: Pose, speed_mps: float = 0.0, curvature_1pm: float = 0.0) -> None:
        """Place the vehicle; wheels already at `curvature_1pm` and holding it; clock and queue zeroed."""
        steer = self.config.steer_for_curvature(curvature_1pm)
        self.state = VehicleState(pose.x_m, pose.y_m, pose.yaw_rad, max(0.0, speed_mps), steer)
        self.ticks = 0
        self._queue.clear()
        self._steer_target_rad = steer
        # Start in equilibrium: the integral already cancels the resistance at the initial speed.
        v = self.state.speed_mps
        resistance = self.config.rolling_resistance_mps2 + self.config.drag_1pm * v * v if v > 0 else 0.0
        self._integral = resistance / self.config.speed_ki if self.config.speed_ki > 0 else 0.0
        self._prev_speed_mps = v

    def teleport(self, pose: Pose, curvature_1pm: float = 0.0) -> None:
        """Move to `pose` keeping speed and clock; pending commands are dropped, the wheels set to
        hold `curvature_1pm`."""
        steer = self.config.steer_for_curvature(curvature_1pm)
        self.state.x_m, self.state.y_m, self.state.yaw_rad = pose.x_m, pose.y_m, pose.yaw_rad
        self.state.steer_rad = steer
        self._queue.clear()
        self._steer_target_rad = steer

    def command(self, curvature_1pm: float) -> None:
        """Issue a curvature command now; it reaches the steering actuator after the actuation delay."""
        if not math.isfinite(curvature_1pm):
            raise ValueError(f"curvature_1pm must be finite, got {curvature_1pm}")
        steer = self.config.steer_for_curvature(curvature_1pm)
        if self.delay_ticks == 0:
            self._steer_target_rad = steer
        else:
            self._queue.append((self.ticks + self.delay_ticks, steer))

    def step(self, target_speed_mps: float, n_substeps: int = 1) -> None:
        """Advance `n_substeps` physics sub-steps holding the speed set-point `target_speed_mps`."""
        cfg, st, dt = self.config, self.state, self.dt_s
        max_dsteer = cfg.max_steer_rate_radps * dt
        queue = self._queue
        for _ in range(n_substeps):
            while queue and queue[0][0] <= self.ticks:
                self._steer_target_rad = queue.popleft()[1]
            dsteer = min(max(self._steer_target_rad - st.steer_rad, -max_dsteer), max_dsteer)
            st.steer_rad += dsteer
            # Longitudinal: PID on speed (derivative on measurement), then resistances.
            err = target_speed_mps - st.speed_mps
            meas_accel = (st.speed_mps - self._prev_speed_mps) / dt
            self._prev_speed_mps = st.speed_mps
            integral = self._integral + err * dt
            raw = cfg.speed_kp * err + cfg.speed_ki * integral - cfg.speed_kd * meas_accel
            accel = min(max(raw, -cfg.max_decel_mps2), cfg.max_accel_mps2)
            if accel == raw or (raw > accel) != (err > 0):  # anti-windup: no integration into saturation
                self._integral = integral
            if st.speed_mps > 0.0:
                accel -= cfg.rolling_resistance_mps2 + cfg.drag_1pm * st.speed_mps * st.speed_mps
            v0 = st.speed_mps
            v1 = max(0.0, v0 + accel * dt)
            dist = 0.5 * (v0 + v1) * dt  # exact for constant acceleration (and for a stop mid-step)
            st.speed_mps = v1
            st.accel_mps2 = (v1 - v0) / dt
            # Lateral: exact arc for the constant curvature over this sub-step.
            dyaw = dist * math.tan(st.steer_rad) / cfg.wheelbase_m
            half = 0.5 * dyaw
            chord = dist * (math.sin(half) / half if abs(half) > 1e-9 else 1.0 - half * half / 6.0)
            mid_yaw = st.yaw_rad + half
            st.x_m += chord * math.cos(mid_yaw)
            st.y_m += chord * math.sin(mid_yaw)
            st.yaw_rad = (st.yaw_rad + dyaw + math.pi) % (2.0 * math.pi) - math.pi
            self.ticks += 1
