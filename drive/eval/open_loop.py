"""`drive eval --open-loop`: policies on recorded drives, where no closed loop exists (real data).

    policies × recorded episodes (under `data`) × noise σ² × noise seeds
        ─ each: the recording replayed as a simulator (`drive.eval.replay`), wrapped by the closed loop's
          own perturbation wrappers, driven by the closed loop's `run_episode` ─► OpenLoopOutcome
        ─ open_loop_report ─► metrics.json, report.md, plots/*.png;  videos/*.mp4 (saliency on the
          real frames) were written by the episodes themselves

Noise is the closed loop's: the same default levels (the NCP paper's σ² = 0, 0.1, 0.2, 0.3), the same
wrappers and spaces, drawn per frame from (reset seed, wrapper, frame). The reset seed of episode i under
noise seed s is drawn from (s, i), so every policy sees the same noise on the same frame, and episodes
do not share one noise pattern. Each run is a pure function of (config, policy, episode, σ², seed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from drive.eval.open_loop_metrics import open_loop_metrics
from drive.eval.plan import check_sweep_axes
from drive.eval.replay import LABEL_COLUMN
from sim.perturbations import check_specs, gaussian_spec

TELEMETRY_KEYS = ("frame", "timestamp_s", "policy_curvature_1pm", "expert_curvature_1pm", "intervention")
"""Per-frame columns an outcome keeps (the video and the trace plot read them)."""


@dataclass(frozen=True)
class OpenLoopConfig:
    """An open-loop evaluation (saved as `eval.yaml` beside the report).

    Attributes:
        data: folder of recorded episodes (searched recursively, as `drive train --data`).
        policies: checkpoint paths.
        label: telemetry column the policy is scored against, 1/m (the training label by default).
        noise: Gaussian image-noise variances σ² (the closed loop's levels by default).
        noise_space: "pixel" or "standardized", as in the closed loop (`sim.perturbations.GaussianNoise`).
        seeds: noise seeds; mean ± sd over them. The clean replay is the same for every seed.
        perturbations: further camera perturbations by name (`sim.perturbations.wrap`).
        max_frames: score only the first `max_frames` frames of each episode; None: all.
        saliency: compute VisualBackProp saliency (needed for the SSIM table and the video overlay).
        saliency_frames: leading frames of each episode whose saliency is kept and compared.
        videos: overlay videos per policy: its first `videos` runs in (episode, seed, noise) order, so
            `videos` = number of noise levels gives one per noise level of the first episode.
        video_s: length of each video, seconds from the episode start.
    """

    data: str = ""
    policies: list[str] = field(default_factory=list)
    label: str = LABEL_COLUMN
    noise: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3])
    noise_space: Literal["pixel", "standardized"] = "pixel"
    seeds: list[int] = field(default_factory=lambda: [0])
    perturbations: list[dict[str, Any]] = field(default_factory=list)
    max_frames: int | None = None
    saliency: bool = False
    saliency_frames: int = 200
    videos: int = 0
    video_s: float = 20.0

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("data: give the folder of recorded episodes (--data DIR)")
        if not self.policies:
            raise ValueError("policies: give at least one checkpoint")
        if "expert" in self.policies:
            raise ValueError(
                "policies: 'expert' has no meaning open loop (it is the label); give checkpoints"
            )
        check_sweep_axes(self, ("noise", "seeds"))
        check_specs(self.perturbations)
        if self.max_frames is not None and self.max_frames < 2:
            raise ValueError(f"max_frames must be ≥ 2 or None, got {self.max_frames}")
        if self.saliency_frames < 1:
            raise ValueError(f"saliency_frames must be ≥ 1, got {self.saliency_frames}")
        if self.videos < 0 or not self.video_s > 0:
            raise ValueError(f"videos must be ≥ 0 and video_s > 0, got {self.videos}, {self.video_s}")

    def run_perturbations(self, noise_variance: float) -> list[dict[str, Any]]:
        """Every perturbation of a run at σ² = `noise_variance`, innermost first (as the closed loop)."""
        return [*gaussian_spec(noise_variance, self.noise_space), *self.perturbations]


@dataclass(frozen=True)
class OpenLoopRun:
    """One cell: a policy on one recorded episode at one noise level and noise seed.

    Attributes:
        index: position in the plan.
        policy: checkpoint path.
        label: the policy's name in tables (`drive.eval.plan.policy_labels`).
        episode: the episode directory.
        episode_index: its position among the episodes found under `data`.
        noise_variance: σ².
        seed: noise seed.
        video: write an overlay video of this run.
    """

    index: int
    policy: str
    label: str
    episode: str
    episode_index: int
    noise_variance: float
    seed: int
    video: bool = False

    @property
    def reset_seed(self) -> int:
        """The replay's reset seed (the perturbations' noise stream), from (seed, episode_index)."""
        state = np.random.SeedSequence([self.seed, self.episode_index]).generate_state(1, dtype=np.uint32)
        return int(state[0])

    @property
    def run_id(self) -> str:
        """A file-system-safe name, e.g. `ncp-ltc_episode-0001_noise0.1_seed0`."""
        import re

        raw = f"{self.label}_{Path(self.episode).name}_noise{self.noise_variance:g}_seed{self.seed}"
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw)


@dataclass
class OpenLoopOutcome:
    """What one run gives the report.

    Attributes:
        run: the cell.
        metrics: `drive.eval.open_loop_metrics.open_loop_metrics`.
        telemetry: `TELEMETRY_KEYS` -> (T,) arrays.
        hidden: (T, N) float32 neuron activity, or None.
        saliency: (K, 78, 200) uint8 VisualBackProp maps of the first K frames, or None.
        video: path of the overlay video relative to the output folder, if one was written.
        wall_s: wall-clock seconds the run took (not part of the results).
        outputs: path of the run's per-frame outputs (`_write_outputs`) relative to the output folder.
    """

    run: OpenLoopRun
    metrics: dict[str, Any]
    telemetry: dict[str, np.ndarray]
    hidden: np.ndarray | None
    saliency: np.ndarray | None
    video: str | None
    wall_s: float
    outputs: str | None = None


def find_data(config: OpenLoopConfig) -> list[Path]:
    """The episodes under `config.data`, each opened once to fail early on a broken one.

    Raises:
        ValueError: no episode there, or one that cannot be read or lacks the label (naming it).
    """
    from recordings.catalog import find_episodes
    from recordings.reader import Recording

    episodes = find_episodes(config.data)
    if not episodes:
        raise ValueError(f"{config.data}: no recorded episodes (no meta.json below it)")
    for path in episodes:
        rec = Recording(path)
        if config.label not in rec.telemetry:
            raise ValueError(f"{path}: no label column {config.label!r} (columns: {sorted(rec.telemetry)})")
    return episodes


def plan_runs(config: OpenLoopConfig, labels: list[str], episodes: list[Path]) -> list[OpenLoopRun]:
    """Every run, policy by policy, then episode, noise level, seed; videos as `OpenLoopConfig.videos`."""
    runs: list[OpenLoopRun] = []
    for policy, label in zip(config.policies, labels):
        order = sorted(
            (e, s, n)
            for e in range(len(episodes))
            for s in range(len(config.seeds))
            for n in range(len(config.noise))
        )
        with_video = set(order[: config.videos])
        for e, episode in enumerate(episodes):
            for n, noise in enumerate(config.noise):
                for s, seed in enumerate(config.seeds):
                    runs.append(
                        OpenLoopRun(
                            index=len(runs),
                            policy=policy,
                            label=label,
                            episode=str(episode),
                            episode_index=e,
                            noise_variance=float(noise),
                            seed=int(seed),
                            video=(e, s, n) in with_video,
                        )
                    )
    return runs


def run_open_loop(
    config: OpenLoopConfig,
    run: OpenLoopRun,
    out_dir: str | Path,
    on_step: Callable[[int], None] | None = None,
) -> OpenLoopOutcome:
    """Replay `run.episode` through the policy (and the run's perturbations); write its video if asked.

    Deterministic: torch runs single-threaded here, the noise comes from `run.reset_seed`.

    Args:
        config: the evaluation.
        run: which cell.
        out_dir: the output folder (videos go under it).
        on_step: called after every replayed frame but the first (progress bars).
    """
    import torch

    from drive.closed_loop.drivers import PolicyRunner
    from drive.closed_loop.loop import EpisodeLimits, run_episode
    from drive.eval.episode import WindowedDriver, cached_policy
    from drive.eval.replay import ReplaySimulator
    from recordings.reader import Recording
    from sim.perturbations import wrap

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.perf_counter()
    try:
        recording = Recording(run.episode)
        replay = ReplaySimulator(recording, config.label, config.max_frames)
        policy = cached_policy(run.policy)
        method = "visual_backprop" if config.saliency and policy.has_feature_maps else None
        period_s = float(recording.meta["control_period_s"])
        keep = max(1, int(round(config.video_s / period_s))) if run.video else 0
        window = max(config.saliency_frames, keep) if method else 0
        driver = WindowedDriver(PolicyRunner(policy, saliency=method, name=run.label), window, keep)
        sim = wrap(replay, config.run_perturbations(run.noise_variance))
        with sim:
            result = run_episode(
                sim,
                driver,
                seed=run.reset_seed,
                limits=EpisodeLimits(max_steps=replay.num_frames - 1),
                on_step=on_step,
            )
        telemetry = {k: result.telemetry[k] for k in TELEMETRY_KEYS}
        metrics = open_loop_metrics(
            telemetry["timestamp_s"], telemetry["policy_curvature_1pm"], telemetry["expert_curvature_1pm"]
        )
        hidden = result.hidden if result.hidden is not None and result.hidden.shape[1] > 0 else None
        video = None
        if run.video and driver.frames:
            video = _write_video(
                run, Path(out_dir), driver.frames, telemetry, result.saliency, hidden, period_s
            )
        saliency = result.saliency[: config.saliency_frames] if result.saliency is not None else None
        # Saliency maps are most of an outputs file (~2 MB per run at 200 frames): the first seed's only.
        kept = saliency if run.seed == config.seeds[0] else None
        outputs = _write_outputs(run, Path(out_dir), telemetry, hidden, kept)
        wall_s = time.perf_counter() - started
        return OpenLoopOutcome(run, metrics, telemetry, hidden, saliency, video, wall_s, outputs)
    finally:
        torch.set_num_threads(threads)


def _write_outputs(
    run: OpenLoopRun,
    out: Path,
    telemetry: dict[str, np.ndarray],
    hidden: np.ndarray | None,
    saliency: np.ndarray | None,
) -> str:
    """The run's per-frame outputs as `runs/<run_id>.npz` (what `drive view` shows of an open-loop run):
    `TELEMETRY_KEYS` (T,), `hidden` (T, N) float32 and `saliency` (K, 78, 200) uint8 when given."""
    path = out / "runs" / f"{run.run_id}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = dict(telemetry)
    if hidden is not None:
        arrays["hidden"] = hidden.astype(np.float32)
    if saliency is not None:
        arrays["saliency"] = saliency
    np.savez_compressed(path, **arrays)
    return str(path.relative_to(out))


def _write_video(
    run: OpenLoopRun,
    out: Path,
    frames: list[np.ndarray],
    telemetry: dict[str, np.ndarray],
    saliency: np.ndarray | None,
    hidden: np.ndarray | None,
    period_s: float,
) -> str:
    """The overlay video (camera as the policy saw it, saliency, policy vs label, neurons) of a run."""
    from drive.eval.videos import write_episode_video

    path = out / "videos" / f"{run.run_id}.mp4"
    title = f"{run.label}  {Path(run.episode).name}  noise var {run.noise_variance:g}  seed {run.seed}"
    write_episode_video(
        path,
        np.stack(frames),
        telemetry,
        saliency=saliency,
        hidden=hidden,
        intervention_frames=[],
        title=title.encode("ascii", "replace").decode(),
        fps=1.0 / period_s,
    )
    return str(path.relative_to(out))
