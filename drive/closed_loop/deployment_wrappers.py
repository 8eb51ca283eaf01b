"""The deployment faults of `DeploymentConfig` as wrappers: `TimingJitter` around the simulator (steps of
uneven length), `DeploymentDriver` around a driver (lost frames, the elapsed time it is told, command
latency). `deploy(sim, driver, config)` applies both.

Determinism: every draw comes from a generator seeded with (episode seed, salt, frame), so the drop
pattern and the step lengths of an episode are the same for every policy and every run.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from drive.closed_loop.deployment import DeploymentConfig
from sim.types import Command, Observation, Simulator
from sim.wrapper import SimulatorWrapper

_JITTER_SALT = 0x717
_DROP_SALT = 0xD12


class TimingJitter(SimulatorWrapper):
    """Each control step lasts (1 + u)·period, u uniform in ±`jitter`, quantised to the simulator's
    physics sub-step (a quarter period by default): the camera frame arrives early or late and the car
    drives on meanwhile. Needs a backend with `physics_substeps` and `next_step_substeps` (the embedded
    simulator). The observation's `timestamp_s` is the true time, so a driver can measure the interval.

    Args:
        sim: the simulator to wrap.
        jitter: half-width of the spread, periods, in [0, 1).
    """

    def __init__(self, sim: Simulator, jitter: float) -> None:
        super().__init__(sim)
        backend: Any = self.unwrapped
        if not hasattr(backend, "next_step_substeps"):
            raise ValueError(f"jitter needs the embedded simulator, got {type(backend).__name__}")
        self.jitter = float(jitter)
        self.substeps = int(backend.config.physics_substeps)
        self.spread = int(round(self.jitter * self.substeps))  # ± sub-steps
        self._seed = 0
        self._frame = 0

    def params(self) -> dict[str, Any]:
        return {**super().params(), "jitter": self.jitter}

    def step_substeps(self, frame: int) -> int:
        """Physics sub-steps of the step that follows `frame` (the nominal count ± the drawn spread)."""
        if self.spread == 0:
            return self.substeps
        rng = np.random.default_rng((self._seed, _JITTER_SALT, frame))
        return self.substeps + int(rng.integers(-self.spread, self.spread + 1))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        self._seed = int(seed or 0)
        obs, info = self.sim.reset(seed=seed, options=options)
        self._frame = obs.frame
        return obs, info

    def step(self, command: Command) -> tuple[Observation, dict[str, Any]]:
        backend: Any = self.unwrapped
        backend.next_step_substeps = self.step_substeps(self._frame)
        obs, info = self.sim.step(command)
        self._frame = obs.frame
        return obs, info


def drop_pattern(seed: int, frames: int, rate: float, burst: int) -> np.ndarray:
    """(frames,) bool, True where a frame is lost: bursts of `burst` frames, started at a delivered
    frame with probability q = rate / (rate + burst·(1 − rate)), so that the long-run lost fraction is
    `rate`. Frame 0 is always delivered (the policy needs a first frame)."""
    out = np.zeros(frames, bool)
    if rate == 0.0:
        return out
    q = rate / (rate + burst * (1.0 - rate))
    left = 0
    for frame in range(1, frames):
        if left > 0:
            out[frame], left = True, left - 1
        elif np.random.default_rng((seed, _DROP_SALT, frame)).random() < q:
            out[frame], left = True, burst - 1
    return out


class DeploymentDriver:
    """A driver as the onboard computer runs it: lost frames, the elapsed time it is told, latency.

    On a lost frame the wrapped driver is not run and the car keeps the last command. On a delivered
    frame the wrapped driver gets `info["policy_elapsed_periods"]`: the measured time since its last
    delivered frame in control periods (`elapsed="true"`), or 1.0 (`elapsed="period"`). The command then
    enters a queue of `latency_steps` steps before it reaches the car (filled with the first command).

    Args:
        driver: the wrapped driver (`PolicyRunner`, `ExpertDriver`, ...).
        config: the deployment setting.
        period_s: the nominal control period, s.
    """

    def __init__(self, driver: Any, config: DeploymentConfig, period_s: float) -> None:
        self.driver = driver
        self.name = driver.name
        self.config = config
        self.period_s = float(period_s)
        self._seed = 0
        self._burst_left = 0
        self._last_time_s: float | None = None
        self._last_command = 0.0
        self._queue: deque[float] = deque()
        self.told_periods: list[float] = []
        """Elapsed periods told to the wrapped driver on each delivered frame (for tests and reports)."""
        self.dropped: list[bool] = []
        """Whether each frame of the episode was lost."""

    def __getattr__(self, name: str) -> Any:
        # What the faults leave alone (the policy, its recurrent state for saliency capture) is the
        # wrapped driver's.
        if name == "driver":
            raise AttributeError(name)
        return getattr(self.driver, name)

    @property
    def hidden_state(self) -> np.ndarray | None:
        return getattr(self.driver, "hidden_state", None)

    @property
    def saliency(self) -> np.ndarray | None:
        return getattr(self.driver, "saliency", None)

    @property
    def saliency_method(self) -> str | None:
        return getattr(self.driver, "saliency_method", None)

    @saliency_method.setter
    def saliency_method(self, method: str | None) -> None:
        self.driver.saliency_method = method

    def reset(self, seed: int) -> None:
        self.driver.reset(seed)
        self._seed = int(seed)
        self._burst_left = 0
        self._last_time_s = None
        self._last_command = 0.0
        self._queue.clear()
        self.told_periods = []
        self.dropped = []

    def _lost(self, frame_index: int) -> bool:
        """Whether frame number `frame_index` of the episode is lost (`drop_pattern`, step by step)."""
        cfg = self.config
        if cfg.drop_rate == 0.0 or frame_index == 0:
            return False
        if self._burst_left > 0:
            self._burst_left -= 1
            return True
        q = cfg.drop_rate / (cfg.drop_rate + cfg.drop_burst * (1.0 - cfg.drop_rate))
        if np.random.default_rng((self._seed, _DROP_SALT, frame_index)).random() < q:
            self._burst_left = cfg.drop_burst - 1
            return True
        return False

    def act(self, obs: Observation, info: dict[str, Any]) -> float:
        lost = self._lost(len(self.dropped))
        self.dropped.append(lost)
        if not lost:
            now = float(obs.timestamp_s)
            measured = 1.0 if self._last_time_s is None else (now - self._last_time_s) / self.period_s
            told = measured if self.config.elapsed == "true" else 1.0
            self.told_periods.append(told)
            self._last_time_s = now
            self._last_command = float(self.driver.act(obs, {**info, "policy_elapsed_periods": told}))
        if not self._queue:  # the first frame: the queue starts full of the first command
            self._queue.extend([self._last_command] * self.config.latency_steps)
        self._queue.append(self._last_command)
        return self._queue.popleft()


def deploy(sim: Simulator, driver: Any, config: DeploymentConfig, period_s: float) -> tuple[Simulator, Any]:
    """`sim` and `driver` with the faults of `config` (unchanged when it has none).

    The camera faults (blur, exposure) go on the simulator as `sim.perturbations` wrappers, outermost, so
    they act on the image the onboard camera delivers; jitter wraps outside them.
    """
    if not config.active:
        return sim, driver
    from sim.perturbations import wrap

    sim = wrap(sim, config.camera_specs())
    if config.jitter:
        sim = TimingJitter(sim, config.jitter)
    return sim, DeploymentDriver(driver, config, period_s)
