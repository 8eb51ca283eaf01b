"""One evaluation episode, as a worker process runs it: build the driver and the wrapped simulator, drive,
keep what the report needs (metrics, intervention log, trajectory, hidden state, saliency window) and
write the episode's overlay video here, where its frames are.

`run_job` is a pure function of (config, spec): a worker process and the serial path give identical
results. Checkpoints are loaded once per process (`_POLICIES`); torch runs single-threaded.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from drive.eval.attention import CapturedStep, EpisodeAttention
from drive.eval.plan import EXPERT, EpisodeSpec, EvalConfig
from perception.saliency_methods import SALIENCY_ABBREVIATIONS
from sim.types import Observation
from sim.wrapper import SimulatorWrapper

if TYPE_CHECKING:  # torch is imported only when a policy is loaded
    from drive.closed_loop.loop import EpisodeResult
    from policies.driving_policy import DrivingPolicy

TRAJECTORY_COLUMNS = (
    "frame",
    "timestamp_s",
    "x_m",
    "y_m",
    "speed_mps",
    "progress_m",
    "lateral_offset_m",
    "curvature_1pm",
    "policy_curvature_1pm",
    "expert_curvature_1pm",
    "intervention",
)
"""Telemetry columns an outcome carries back to the report (the full table is in a recording)."""

# (checkpoint path, mtime ns, size) -> its policy, loaded once per process
_POLICIES: dict[tuple[str, int, int], DrivingPolicy] = {}


@dataclass
class EpisodeOutcome:
    """What one episode gives the report.

    Attributes:
        spec: the matrix cell.
        metrics: `drive.closed_loop.episode_metrics.episode_metrics`.
        interventions: the safety driver's log rows (frame, time_s, cause, offsets, context).
        telemetry: `TRAJECTORY_COLUMNS` -> (T,) arrays.
        hidden: (T, N) float32 neuron activity (the CNN: its last hidden layer), or None.
        saliency: (K, 78, 200) uint8 maps of the first K frames by the first saliency method, or None.
        attention: every saliency method's maps of the window, their faithfulness and rank
            correlations (`drive.eval.attention`), or None without saliency.
        neuron_types: per column of `hidden`, the neuron's layer (`inter`, `command`, `motor`) for a
            wired head, or None.
        video: path of the overlay video, if one was written.
        wall_s: wall-clock seconds the episode took (not part of the results).
        process_episode: episodes this process ran before this one; 0: its first, whose `wall_s` also
            holds the process's one-time set-up (track, scenery, noise tables, onnxruntime sessions).
    """

    spec: EpisodeSpec
    metrics: dict[str, Any]
    interventions: list[dict[str, Any]]
    telemetry: dict[str, np.ndarray]
    hidden: np.ndarray | None
    saliency: np.ndarray | None
    video: str | None
    wall_s: float
    attention: EpisodeAttention | None = None
    neuron_types: list[str] | None = None
    process_episode: int = 0


_EPISODES_IN_PROCESS = itertools.count()


class WindowedDriver:
    """Wraps a driver for evaluation: saliency only for the first `saliency_frames` steps (the report
    compares that window; it saves ~20 % per step after it) and camera frames kept for the first
    `keep_frames` steps (the video). The neuron activity is the driver's own (`PolicyRunner`: for a
    policy without recurrent state, the CNN, its last hidden layer; see `DrivingPolicy.inspect_step`).
    The first `capture_frames` steps are kept as `CapturedStep`s (frame, noise, state before the step)
    for the saliency analysis of every method (`drive.eval.attention`).

    Args:
        driver: an `ExpertDriver` or `PolicyRunner`.
        saliency_frames: steps with saliency (0: none).
        keep_frames: steps whose camera image is kept in `frames`.
        capture_frames: leading steps kept in `captured` (a `PolicyRunner` only).
    """

    def __init__(
        self, driver: Any, saliency_frames: int = 0, keep_frames: int = 0, capture_frames: int = 0
    ) -> None:
        self.driver = driver
        self.name = driver.name
        self.saliency_frames = int(saliency_frames)
        self.keep_frames = int(keep_frames)
        self.capture_frames = int(capture_frames) if hasattr(driver, "state_array") else 0
        self._method = getattr(driver, "saliency_method", None)
        self.frames: list[np.ndarray] = []
        self.captured: list[CapturedStep] = []
        self.hidden_state: np.ndarray | None = None
        self.saliency: np.ndarray | None = None
        self._step = 0

    def reset(self, seed: int) -> None:
        self.driver.reset(seed)
        self.frames = []
        self.captured = []
        self._step = 0

    def act(self, obs: Observation, info: dict[str, Any]) -> float:
        in_window = self._step < self.saliency_frames
        if self._method is not None:
            self.driver.saliency_method = self._method if in_window else None
        if self._step < self.capture_frames:
            noise = getattr(obs, "input_noise", None)
            self.captured.append(
                CapturedStep(
                    np.array(obs.image),
                    None if noise is None else np.asarray(noise, np.float32).copy(),
                    self.driver.state_array(),
                )
            )
        curvature: float = self.driver.act(obs, info)
        self.saliency = self.driver.saliency if (in_window and self._method is not None) else None
        self.hidden_state = self.driver.hidden_state
        if self._step < self.keep_frames:
            self.frames.append(obs.image)
        self._step += 1
        return curvature


def build_driver(
    config: EvalConfig, spec: EpisodeSpec, saliency_frames: int, keep_frames: int
) -> WindowedDriver:
    """The driver of `spec`: the expert, or the checkpoint's policy in a `PolicyRunner` (engine torch) or
    its exported graph in an `OnnxRunner` (engine onnx)."""
    from drive.closed_loop.drivers import ExpertDriver, PolicyRunner

    if spec.policy == EXPERT:
        return WindowedDriver(ExpertDriver(None), 0, keep_frames)
    from drive.eval.engine import engine_model, onnx_runner, parse_engine

    engine = parse_engine(config.engine)
    if engine.kind == "onnx":  # the parent exported it (`prepare_engine`): a cache hit here
        model = engine_model(spec.policy, engine.precision, feature_maps=config.saliency)
        onnx = onnx_runner(model, spec.label, config.saliency)
        return WindowedDriver(onnx, saliency_frames if onnx.saliency_method else 0, keep_frames)
    policy = cached_policy(spec.policy)
    method = config.saliency_methods[0] if config.saliency and policy.has_feature_maps else None
    runner = PolicyRunner(policy, saliency=method, name=spec.label)
    capture = config.saliency_frames if method else 0
    return WindowedDriver(runner, saliency_frames if method else 0, keep_frames, capture)


def cached_policy(path: str | Path) -> DrivingPolicy:
    """The policy of checkpoint `path`, loaded once per process (a rewritten file is loaded again)."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
    policy = _POLICIES.get(key)
    if policy is None:
        from policies.checkpoint import load_policy

        policy, _ = load_policy(path)
        _POLICIES[key] = policy
    return policy


def run_job(
    config: EvalConfig,
    spec: EpisodeSpec,
    out_dir: str | Path,
    on_steps: Callable[[int], None] | None = None,
) -> EpisodeOutcome:
    """Drive the episode `spec` and return its outcome (and write its video / recording under `out_dir`).

    Args:
        config: the evaluation.
        spec: which episode.
        out_dir: the evaluation's output folder.
        on_steps: called with the number of new steps now and then (progress).
    """
    from drive.closed_loop.loop import EpisodeLimits, run_episode

    torch = _torch_if_needed(config)
    threads = torch.get_num_threads() if torch is not None else 1
    if torch is not None:
        torch.set_num_threads(1)  # identical numerics in a worker and in the serial path
    started = time.perf_counter()
    try:
        out = Path(out_dir)
        episode_sim = config.episode_sim(spec.condition)
        keep = config.video_frames if spec.video else 0
        driver = build_driver(config, spec, _saliency_window(config, spec, keep), keep)
        sim = _episode_simulator(config, spec, driver)
        # Built with a safety driver (EvalConfig always has one), so `sim` is a wrapper chain; every
        # backend under it has a `track`, which the `Simulator` protocol does not declare.
        backend: Any = cast(SimulatorWrapper, sim).unwrapped
        limits = EpisodeLimits(
            max_steps=config.max_steps,
            max_time_s=config.episode_time_cap_s(backend.track.length_m),
            laps=config.laps,
        )
        record_to = out / "episodes" / spec.episode_id if config.record else None
        meta = episode_sim.meta(
            spec.seed,
            extra={
                "driver": spec.label,
                "policy": spec.policy,
                "noise_variance": spec.noise_variance,
                "deploy": spec.deploy,
            },
        )
        progress = _StepReporter(on_steps)
        with sim:
            result = run_episode(
                sim,
                driver,
                seed=spec.seed,
                limits=limits,
                record_to=record_to,
                meta=meta,
                on_step=progress,
                overwrite=True,  # a rerun redoes the evaluation's own episode (never a foreign folder)
            )
        progress.flush()
        telemetry = {k: result.telemetry[k] for k in TRAJECTORY_COLUMNS}
        hidden = result.hidden if result.hidden is not None and result.hidden.shape[1] > 0 else None
        video = _write_video(config, spec, out, driver, result, telemetry, hidden) if spec.video else None
        # The report compares the leading window only (a recording keeps every frame's map).
        saliency = result.saliency[: config.saliency_frames] if result.saliency is not None else None
        attention = _attention(config, spec, driver)
        return EpisodeOutcome(
            spec=spec,
            metrics=result.metrics,
            interventions=result.interventions,
            telemetry=telemetry,
            hidden=hidden,
            saliency=saliency,
            video=video,
            wall_s=time.perf_counter() - started,
            attention=attention,
            neuron_types=_neuron_types(driver, hidden),
            process_episode=next(_EPISODES_IN_PROCESS),
        )
    finally:
        if torch is not None:
            torch.set_num_threads(threads)


def _torch_if_needed(config: EvalConfig) -> Any:
    """The torch module when `config`'s engine runs PyTorch (or it is already imported), else None: a
    worker of the onnx engine starts without importing it."""
    import sys

    if config.engine == "torch" or "torch" in sys.modules:
        import torch

        return torch
    return None


def _attention(config: EvalConfig, spec: EpisodeSpec, driver: WindowedDriver) -> EpisodeAttention | None:
    """Every saliency method's maps of the captured window, their faithfulness and agreement, or None."""
    if not driver.captured:
        return None
    from drive.eval.attention import episode_attention

    return episode_attention(
        driver.driver.policy, driver.captured, config.saliency_methods, config.faithfulness_frames, spec.seed
    )


def _neuron_types(driver: WindowedDriver, hidden: np.ndarray | None) -> list[str] | None:
    """Each hidden column's layer name for a wired head (its activity is in neuron-id order), else None."""
    wiring = getattr(getattr(driver.driver, "policy", None), "wiring", None)
    if wiring is None or hidden is None or hidden.shape[1] != wiring.units:
        return None
    return [str(wiring.neuron_type(i)) for i in range(wiring.units)]


EPISODE_MODULES = (
    "drive.closed_loop.drivers",
    "drive.closed_loop.loop",
    "drive.closed_loop.deployment_wrappers",
    "drive.eval.attention",
    "drive.eval.engine",
    "sim.registry",
    "sim.embedded.simulator",
)
"""What `run_job` imports as it goes (lazily, so a process that only plans pays nothing)."""


def preload_episode_modules(engine: str) -> None:
    """Import the modules an episode of `engine` ("torch", "onnx:…") runs on: a pool worker does it at
    its start rather than inside its first episode's time."""
    import importlib

    onnx = ("drive.closed_loop.onnx_runner",) if engine.startswith("onnx") else ()
    for name in (*EPISODE_MODULES, *onnx):
        importlib.import_module(name)


def _episode_simulator(config: EvalConfig, spec: EpisodeSpec, driver: WindowedDriver) -> Any:
    """The episode's wrapped simulator (noise, perturbations, safety driver), and its deployment faults
    (`spec.deploy`) on it and on `driver.driver`, which is replaced by its `DeploymentDriver`."""
    from drive.closed_loop.deployment import DeploymentConfig
    from drive.closed_loop.deployment_wrappers import deploy

    context = {"policy": spec.label, "condition": spec.condition, "seed": spec.seed}
    sim = config.episode_sim(spec.condition).build(
        safety=config.safety, perturbations=config.episode_perturbations(spec), safety_context=context
    )
    sim, driver.driver = deploy(
        sim, driver.driver, DeploymentConfig.parse(spec.deploy), config.control_period_s
    )
    return sim


def _saliency_window(config: EvalConfig, spec: EpisodeSpec, keep_frames: int) -> int:
    """Leading steps that get saliency: the report's window, every frame of a recording, and at least the
    frames of the episode's video."""
    if config.record:
        return 1 << 62  # a recording gets saliency on every frame
    return max(config.saliency_frames, keep_frames) if spec.video else config.saliency_frames


def _write_video(
    config: EvalConfig,
    spec: EpisodeSpec,
    out: Path,
    driver: WindowedDriver,
    result: EpisodeResult,
    telemetry: dict[str, np.ndarray],
    hidden: np.ndarray | None,
) -> str:
    """Write the episode's overlay video under `out/videos`; returns its path relative to `out`."""
    from drive.eval.videos import write_episode_video

    path = out / "videos" / f"{spec.episode_id}.mp4"
    write_episode_video(
        path,
        np.stack(driver.frames),
        telemetry,
        saliency=result.saliency,
        hidden=hidden,
        intervention_frames=[int(row["frame"]) for row in result.interventions],
        title=f"{spec.label}  {spec.condition}  noise var {spec.noise_variance:g}  seed {spec.seed}"
        + (
            f"  saliency {SALIENCY_ABBREVIATIONS[config.saliency_methods[0]]}"
            if result.saliency is not None
            else ""
        ),
        fps=1.0 / config.control_period_s,
    )
    return str(path.relative_to(out))


class _StepReporter:
    """Batches step counts for the progress bar (a queue message per step would cost more than a step)."""

    def __init__(self, sink: Callable[[int], None] | None, every: int = 25) -> None:
        self.sink, self.every, self.pending = sink, every, 0

    def __call__(self, _step: int) -> None:
        self.pending += 1
        if self.pending >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.sink is not None and self.pending:
            self.sink(self.pending)
        self.pending = 0
