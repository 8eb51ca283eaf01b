"""`drive onboard`: the closed loop driven by an exported ONNX model, as on the car's computer.

Each control period the model gets the frame and a deadline (the period by default). A step that takes
longer is a deadline miss: the computer is still busy when the next frame arrives, so that frame (and
any further one the overrun covers) is skipped and the last command is held — the recurrent state does
not advance on skipped frames. Latency is wall-clock time of the model call (the one place where the
wall clock is the right clock); everything else runs in simulation time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drive.onboard.runtime import OnboardPolicy
from sim.types import Observation


@dataclass
class DeadlineStats:
    """Latency and deadline bookkeeping of one drive (latencies in ms)."""

    latencies_ms: list[float]
    misses: int = 0
    skipped_frames: int = 0

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        return {
            "latency_p50_ms": float(np.percentile(lat, 50)),
            "latency_p99_ms": float(np.percentile(lat, 99)),
            "latency_max_ms": float(lat.max()),
            "deadline_misses": int(self.misses),
            "skipped_frames": int(self.skipped_frames),
            "model_calls": len(self.latencies_ms),
        }


class OnboardDriver:
    """A closed-loop driver around `OnboardPolicy` with a per-frame deadline.

    Args:
        model_path: the exported model.
        deadline_s: time budget per frame, s; None uses the model's control period.
        threads: onnxruntime intra-op threads.
        clock: returns seconds (injectable so tests can simulate slow steps).
    """

    name = "onboard"
    saliency: np.ndarray | None = None  # no saliency on board; typed as the `Driver` protocol has it

    def __init__(
        self,
        model_path: str | Path,
        deadline_s: float | None = None,
        threads: int = 1,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.policy = OnboardPolicy(model_path, intra_op_num_threads=threads)
        self.deadline_s = deadline_s if deadline_s is not None else self.policy.contract.control_period_s
        if not self.deadline_s > 0:
            raise ValueError(f"deadline must be > 0 s, got {self.deadline_s}")
        self._clock = clock
        self.stats = DeadlineStats([])
        self._skip = 0
        self._last_1pm = 0.0
        self._last_frame_s: float | None = None
        self.hidden_state: np.ndarray | None = None

    def reset(self, seed: int = 0) -> None:
        self.policy.reset()
        self.stats = DeadlineStats([])
        self._skip = 0
        self._last_1pm = 0.0
        self._last_frame_s = None
        self.hidden_state = None

    def act(self, obs: Observation, info: dict[str, Any] | None = None) -> float:
        if self._skip > 0:  # still busy with an overrun: this frame is lost
            self._skip -= 1
            self.stats.skipped_frames += 1
            return self._last_1pm
        # Simulation time since the last frame the policy ran on: more than a period after lost frames,
        # which a continuous-time graph integrates over (a discrete-time one ignores it).
        now_s, last_s = float(obs.timestamp_s), self._last_frame_s
        self._last_frame_s = now_s
        period_s = self.policy.contract.control_period_s
        elapsed_s = period_s if last_s is None or now_s <= last_s else now_s - last_s
        start = self._clock()
        self._last_1pm = self.policy.act(obs.image, elapsed_s)
        latency_s = self._clock() - start
        self.stats.latencies_ms.append(latency_s * 1e3)
        if latency_s > self.deadline_s:
            self.stats.misses += 1
            self._skip = math.ceil(latency_s / self.deadline_s) - 1
        self.hidden_state = self.policy.state[0]
        return self._last_1pm


def check_control_rate(model_path: object, model_rate_hz: float, sim_rate_hz: float) -> None:
    """Refuse a model whose contract names another control rate than the simulator steps at.

    The graph advances its state by one control period per call, so driving it at another rate would
    silently change its dynamics; the simulator's rate is not bent to an (edited) model.

    Raises:
        ModelContractError: naming the model file, both rates and the key.
    """
    from drive.onboard.contract import MetaKey, ModelContractError

    if not math.isclose(model_rate_hz, sim_rate_hz, rel_tol=1e-9):
        raise ModelContractError(
            f"model {model_path}: metadata {MetaKey.CONTROL_RATE_HZ!r} = {model_rate_hz:g} Hz, but the "
            f"simulator steps at {sim_rate_hz:g} Hz; export the policy for {sim_rate_hz:g} Hz instead"
        )


def drive_onboard(
    model_path: str | Path,
    *,
    track: str = "forest",
    condition: str = "summer",
    laps: int = 1,
    seed: int = 0,
    perturbations: list[dict[str, Any]] | None = None,
    deadline_s: float | None = None,
    threads: int = 1,
    max_time_s: float | None = 600.0,
    record_to: str | Path | None = None,
) -> dict[str, Any]:
    """Drive the embedded simulator with an exported model under the default safety driver.

    `perturbations` are camera perturbation specs (`sim.perturbations.wrap`), Gaussian noise included
    (`sim.perturbations.gaussian_spec(0.1)`).

    Returns:
        {"metrics": episode metrics (as `drive eval`), "deadline": latency and misses,
         "interventions": log rows, "telemetry": per-frame arrays}.
    """
    from drive.closed_loop.loop import EpisodeLimits, run_episode
    from sim.embedded.camera import CameraConfig
    from sim.embedded.simulator import EmbeddedSimConfig
    from sim.registry import make_simulator, sim_meta
    from sim.safety_driver import SafetyDriverConfig

    driver = OnboardDriver(model_path, deadline_s=deadline_s, threads=threads)
    contract = driver.policy.contract
    check_control_rate(model_path, contract.control_rate_hz, 1.0 / EmbeddedSimConfig().dt_ctrl_s)
    config = EmbeddedSimConfig(
        track=track,
        condition=condition,
        camera=CameraConfig(width=contract.input_width, height=contract.input_height),
    )
    with make_simulator("embedded", config, safety=SafetyDriverConfig(), perturbations=perturbations) as sim:
        result = run_episode(
            sim,
            driver,
            seed=seed,
            limits=EpisodeLimits(laps=laps, max_time_s=max_time_s),
            record_to=record_to,
            meta=sim_meta("embedded", config, seed, extra={"driver": "onboard", "model": str(model_path)}),
        )
    return {
        "metrics": result.metrics,
        "deadline": driver.stats.summary(),
        "interventions": result.interventions,
        "telemetry": result.telemetry,
    }
