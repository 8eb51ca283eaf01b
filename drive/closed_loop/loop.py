"""The closed loop: simulator ↔ driver at the control rate, in simulation time, optionally recorded.

One episode: reset the simulator and the driver with the episode seed; then, each control step, the
driver turns the observation into a curvature, the row (frame, telemetry, the driver's hidden state and
saliency) is stored, and the simulator advances one control period. The drive is written in the
recording format when a path is given, so closed-loop drives and training drives read the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common.interrupts import check
from drive.closed_loop.drivers import Driver
from drive.closed_loop.episode_metrics import episode_metrics
from sim.perturbations import applied_noise_variance
from sim.safety_driver import SafetyDriver
from sim.types import Command, Observation, Simulator
from sim.wrapper import SimulatorWrapper

if TYPE_CHECKING:  # recordings (pyarrow) is imported only when a drive is recorded
    from recordings.writer import RecordingWriter

EXTRA_COLUMNS = {"policy_curvature_1pm": "float32", "road_curvature_1pm": "float32", "lap": "int32"}
"""Telemetry columns the closed loop adds to the base table."""


@dataclass(frozen=True)
class EpisodeLimits:
    """When an episode ends (the first limit reached, or the simulator's own `truncated`).

    Attributes:
        max_steps: control steps after the first frame.
        max_time_s: simulation time, s.
        laps: completed laps.
    """

    max_steps: int | None = None
    max_time_s: float | None = None
    laps: int | None = None

    def __post_init__(self) -> None:
        if self.max_steps is None and self.max_time_s is None and self.laps is None:
            raise ValueError("EpisodeLimits needs max_steps, max_time_s or laps")

    def reached(self, steps: int, obs: Observation, info: dict[str, Any]) -> bool:
        return (
            (self.max_steps is not None and steps >= self.max_steps)
            or (self.max_time_s is not None and obs.timestamp_s >= self.max_time_s - 1e-9)
            or (self.laps is not None and int(info.get("lap", 0)) >= self.laps)
            or bool(info.get("truncated", False))
        )


@dataclass
class EpisodeResult:
    """What one closed-loop episode produced.

    Attributes:
        telemetry: per-frame arrays (T,), the recording's columns.
        interventions: one dict per safety-driver takeover.
        metrics: `drive.closed_loop.episode_metrics.episode_metrics` of the episode.
        hidden: (T, N) float32 neuron activity, or None for drivers without state.
        saliency: (T, h, w) uint8 saliency (0–255), or None.
        frames: (T, H, W, 3) uint8 camera frames as the policy saw them, if kept.
        path: the recording directory, if written.
    """

    telemetry: dict[str, np.ndarray]
    interventions: list[dict[str, Any]]
    metrics: dict[str, Any]
    hidden: np.ndarray | None = None
    saliency: np.ndarray | None = None
    frames: np.ndarray | None = None
    path: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)


def find_safety_driver(sim: Simulator) -> SafetyDriver | None:
    """The SafetyDriver in a wrapper chain, if any."""
    while isinstance(sim, SimulatorWrapper):
        if isinstance(sim, SafetyDriver):
            return sim
        sim = sim.sim
    return None


def run_episode(
    sim: Simulator,
    driver: Driver,
    *,
    seed: int,
    limits: EpisodeLimits,
    record_to: str | Path | None = None,
    meta: dict[str, Any] | None = None,
    keep_frames: bool = False,
    on_step: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> EpisodeResult:
    """Drive one episode.

    Args:
        sim: the simulator, wrapped with perturbations / a safety driver as wanted.
        driver: expert or policy runner.
        seed: the episode seed (simulator and driver are reset with it).
        limits: when to stop.
        record_to: write the drive as a recording episode here (refuses an existing one).
        meta: recording metadata: simulator, track, condition, control_period_s, config, extra.
        keep_frames: keep the camera frames in memory (for videos).
        on_step: called with the step count after every step (progress bars).
        overwrite: replace an episode already at `record_to` (only if it holds nothing but an episode's
            own files; see `recordings.writer.RecordingWriter`).

    An exception, KeyboardInterrupt or SIGTERM during the drive leaves the recording marked aborted
    (`complete: false`), never complete.
    """
    # What was applied is read from the wrapper chain: every row stores the Gaussian noise variance.
    noise_variance = applied_noise_variance(sim)
    obs, info = sim.reset(seed=seed)
    driver.reset(seed)
    rows: list[dict[str, Any]] = []
    hidden: list[np.ndarray] = []
    saliency: list[np.ndarray] = []
    frames: list[np.ndarray] = []
    writer = None
    try:
        steps = 0
        while True:
            check()  # a Ctrl-C swallowed where it landed (common/interrupts.py)
            curvature = float(driver.act(obs, info))
            row = _row(obs, info, curvature, noise_variance)
            rows.append(row)
            if driver.hidden_state is not None:
                hidden.append(np.asarray(driver.hidden_state, np.float32))
            if driver.saliency is not None:
                saliency.append(np.round(np.asarray(driver.saliency) * 255).astype(np.uint8))
            if keep_frames:
                frames.append(obs.image)
            if record_to is not None:
                if writer is None:
                    writer = _open_writer(record_to, obs, meta, hidden, saliency, overwrite)
                arrays = {}
                if hidden:
                    arrays["hidden_state"] = hidden[-1]
                if saliency:
                    arrays["saliency"] = saliency[-1]
                writer.append(obs.image, row, arrays or None)
            if limits.reached(steps, obs, info):
                break
            obs, info = sim.step(Command(curvature))
            steps += 1
            if on_step is not None:
                on_step(steps)
    except BaseException as exc:
        # Ctrl-C, SIGTERM (the CLI turns it into an exception) or a failure: what was driven stays on
        # disk, marked aborted, so no reader or rerun takes the episode for a finished one.
        if writer is not None:
            writer.__exit__(type(exc), exc, exc.__traceback__)
        raise
    if writer is not None:
        writer.close()
    return _episode_result(sim, rows, hidden, saliency, frames, int(info.get("lap", 0)), record_to)


def _episode_result(
    sim: Simulator,
    rows: list[dict[str, Any]],
    hidden: list[np.ndarray],
    saliency: list[np.ndarray],
    frames: list[np.ndarray],
    laps: int,
    record_to: str | Path | None,
) -> EpisodeResult:
    """The per-frame rows and arrays of a finished drive as an `EpisodeResult` with its metrics."""
    safety = find_safety_driver(sim)
    telemetry = {k: np.asarray([r[k] for r in rows]) for k in rows[0]}
    log = [i.to_row() for i in safety.log] if safety is not None else []
    return EpisodeResult(
        telemetry=telemetry,
        interventions=log,
        metrics=episode_metrics(telemetry, len(log), laps),
        hidden=np.stack(hidden) if hidden else None,
        saliency=np.stack(saliency) if saliency else None,
        frames=np.stack(frames) if frames else None,
        path=Path(record_to) if record_to is not None else None,
        params={"wrappers": sim.chain() if isinstance(sim, SimulatorWrapper) else []},
    )


def _row(
    obs: Observation, info: dict[str, Any], curvature_1pm: float, noise_variance: float
) -> dict[str, Any]:
    pose = info["pose"]
    autonomous = bool(info.get("autonomous", True))
    executed = curvature_1pm if autonomous else float(info["expert_curvature_1pm"])
    return {
        "frame": int(obs.frame),
        "timestamp_s": float(obs.timestamp_s),
        "speed_mps": float(obs.speed_mps),
        "curvature_1pm": executed,
        "expert_curvature_1pm": float(info["expert_curvature_1pm"]),
        "lateral_offset_m": float(info["lateral_offset_m"]),
        "heading_error_rad": float(info["heading_error_rad"]),
        "progress_m": float(info["progress_m"]),
        "x_m": float(pose.x_m),
        "y_m": float(pose.y_m),
        "yaw_rad": float(pose.yaw_rad),
        "on_road": bool(info["on_road"]),
        "intervention": (not autonomous) or bool(info.get("intervention", False)),
        "noise_variance": float(noise_variance),
        "policy_curvature_1pm": float(curvature_1pm),
        "road_curvature_1pm": float(info.get("curvature_1pm", np.nan)),
        "lap": int(info.get("lap", 0)),
    }


def _open_writer(
    path: str | Path,
    obs: Observation,
    meta: dict[str, Any] | None,
    hidden: list[np.ndarray],
    saliency: list[np.ndarray],
    overwrite: bool = False,
) -> RecordingWriter:
    from recordings.writer import RecordingWriter

    extra_arrays: dict[str, tuple[tuple[int, ...], str]] = {}
    if hidden:
        extra_arrays["hidden_state"] = (hidden[-1].shape, "float32")
    if saliency:
        extra_arrays["saliency"] = (saliency[-1].shape, "uint8")
    return RecordingWriter(
        path,
        image_shape=obs.image.shape,
        meta=meta or {"simulator": "unknown", "track": "unknown", "control_period_s": 0.05},
        extra_columns=EXTRA_COLUMNS,
        extra_arrays=extra_arrays or None,
        overwrite=overwrite,
    )
