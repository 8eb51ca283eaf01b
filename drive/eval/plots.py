"""The evaluation's figures (matplotlib, Agg, no global pyplot state):

- `interventions_vs_noise.png`: interventions per episode vs σ², mean ± sd over seeds, one line per policy
  (pooled over conditions, plus one panel per condition when there are several);
- `ssim_vs_noise.png`: saliency SSIM clean vs noisy vs σ² (1 at σ² = 0 by definition);
- `trajectory_<policy>.png`: the driven path on the track map for each noise level (first condition and
  seed), coloured by the hidden state's PC1 (the paper's Fig. 6), interventions marked (only on an
  embedded track: a CARLA town's map is not known here);
- `neurons_<policy>.png`: neuron activity over time in the clean drive with the curvature on top;
- `lipschitz.png`: per-neuron max local Lipschitz constants of the clean drives, per policy;
- `attention_<policy>.png`, `neuron_map_<policy>.png`: see drive.eval.attention_plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from drive.eval.episode import EpisodeOutcome
from drive.eval.interpret import pca
from drive.eval.plan import EvalConfig, eval_track
from drive.eval.report import ALL, noise_key
from sim.tracks.track import Track

TRACE_SECONDS = 60.0
"""Length of the neuron-trace figure, s."""


def write_plots(
    config: EvalConfig, outcomes: list[EpisodeOutcome], analysis: dict[str, Any], out_dir: str | Path
) -> list[Path]:
    """Draw every figure the results allow into `out_dir`; returns the written paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        plot_metric_vs_noise(
            config, analysis, "interventions", "interventions per episode", out / "interventions_vs_noise.png"
        )
    ]
    if any(e["ssim"] is not None for e in analysis["episodes"]):
        paths.append(plot_ssim_vs_noise(config, analysis, out / "ssim_vs_noise.png"))
    labels = list(dict.fromkeys(o.spec.label for o in outcomes))
    track = eval_track(config)
    for label in labels:
        mine = [o for o in outcomes if o.spec.label == label]
        if track is not None:
            paths.append(plot_trajectories(config, track, mine, out / f"trajectory_{_safe(label)}.png"))
        clean = first_episode(mine, config, min(config.noise))
        if clean is not None and clean.hidden is not None:
            paths.append(plot_neuron_traces(clean, out / f"neurons_{_safe(label)}.png"))
        paths += _attention_plots(config, track, mine, clean, out, label)
    if analysis.get("lipschitz"):
        paths.append(plot_lipschitz(config, analysis, out / "lipschitz.png"))
    return paths


def _attention_plots(
    config: EvalConfig,
    track: Track | None,
    mine: list[EpisodeOutcome],
    clean: EpisodeOutcome | None,
    out: Path,
    label: str,
) -> list[Path]:
    """The policy's maps figure and, on an embedded track, its neuron map (drive.eval.attention_plots)."""
    from drive.eval.attention_plots import plot_attention_maps, plot_neuron_map

    drawn = [plot_attention_maps(config, mine, out / f"attention_{_safe(label)}.png")]
    if track is not None and clean is not None:
        drawn.append(plot_neuron_map(config, track, clean, out / f"neuron_map_{_safe(label)}.png"))
    return [p for p in drawn if p is not None]


def plot_metric_vs_noise(
    config: EvalConfig, analysis: dict[str, Any], metric: str, ylabel: str, path: Path
) -> Path:
    """`metric` (mean ± sd over seeds) against σ², one line per policy; a panel per condition if several."""
    panels = [ALL, *config.conditions] if len(config.conditions) > 1 else [ALL]
    fig = Figure(figsize=(4.2 * len(panels), 3.4), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, condition in zip(axes, panels):
        for label, by_condition in analysis["aggregate"].items():
            mean, sd = _series(config.noise, by_condition[condition], metric)
            ax.errorbar(config.noise, mean, yerr=sd, marker="o", capsize=3, label=label)
        ax.set_title("all conditions" if condition == ALL else condition)
        ax.set_xlabel("noise variance σ²")
        ax.set_xticks(config.noise)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    axes[0].legend(fontsize=8)
    fig.savefig(path, dpi=110)
    return path


def plot_ssim_vs_noise(config: EvalConfig, analysis: dict[str, Any], path: Path) -> Path:
    """Saliency SSIM (clean vs noisy) against σ², mean ± sd; σ² = 0 is 1 by definition."""
    fig = Figure(figsize=(4.6, 3.4), layout="constrained")
    ax = fig.subplots()
    for label, by_condition in analysis["aggregate"].items():
        mean, sd = _series(config.noise, by_condition[ALL], "ssim")
        mean = np.where(np.asarray(config.noise) == 0.0, 1.0, mean)
        if np.all(np.isnan(mean[np.asarray(config.noise) > 0])):
            continue  # a driver without saliency (the expert)
        ax.errorbar(config.noise, mean, yerr=sd, marker="o", capsize=3, label=label)
    ax.set_xlabel("noise variance σ²")
    ax.set_ylabel("SSIM of saliency, clean vs noisy")
    ax.set_xticks(config.noise)
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    return path


def plot_trajectories(config: EvalConfig, track: Track, outcomes: list[EpisodeOutcome], path: Path) -> Path:
    """One track map per noise level (first condition and seed), the path coloured by PC1 (or by the
    policy's curvature when it has no hidden state), red crosses where the safety driver took over."""
    episodes = [e for e in (first_episode(outcomes, config, n) for n in config.noise) if e is not None]
    fig = Figure(figsize=(4.4 * len(episodes), 4.4), layout="constrained")
    axes = fig.subplots(1, len(episodes), squeeze=False)[0]
    for ax, outcome in zip(axes, episodes):
        _draw_track(ax, track)
        tel = outcome.telemetry
        if outcome.hidden is not None:
            colour, what = pca(outcome.hidden).pc1, "hidden-state PC1"
        else:
            colour, what = tel["policy_curvature_1pm"].astype(np.float64), "policy curvature, 1/m"
        lines = _path_segments(tel["x_m"], tel["y_m"], tel["speed_mps"], config.control_period_s)
        keep = lines[1]
        collection = LineCollection(list(lines[0]), array=colour[:-1][keep], cmap="viridis", linewidths=1.6)
        ax.add_collection(collection)
        for row in outcome.interventions:
            i = int(np.searchsorted(tel["frame"], row["frame"]))
            i = max(i - 1, 0)  # the row at the trigger frame is already teleported: mark the frame before
            ax.plot(tel["x_m"][i], tel["y_m"][i], "x", color="red", markersize=7, markeredgewidth=2)
        spec = outcome.spec
        ax.set_title(f"σ² = {spec.noise_variance:g}: {len(outcome.interventions)} interventions", fontsize=9)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(collection, ax=ax, shrink=0.6, label=what)
    spec = episodes[0].spec
    fig.suptitle(f"{spec.label} on {config.track}, {spec.condition}, seed {spec.seed}")
    fig.savefig(path, dpi=110)
    return path


def plot_neuron_traces(outcome: EpisodeOutcome, path: Path, seconds: float = TRACE_SECONDS) -> Path:
    """Curvature (policy, expert) and every neuron's activity over the first `seconds` of a drive."""
    if outcome.hidden is None:
        raise ValueError("plot_neuron_traces: the episode has no hidden state (a stateless policy)")
    tel = outcome.telemetry
    t = tel["timestamp_s"]
    n = int(np.searchsorted(t, t[0] + seconds, side="right"))
    t, hidden = t[:n], outcome.hidden[:n]
    units = hidden.shape[1]
    fig = Figure(figsize=(9, 2.2 + (0.22 * units if units <= 24 else 3.5)), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1, 2.5 if units <= 24 else 2])
    top.plot(t, tel["policy_curvature_1pm"][:n], label="policy", lw=1, color="tab:orange")
    top.plot(t, tel["expert_curvature_1pm"][:n], label="expert", lw=1, alpha=0.8, color="tab:green")
    _shade_interventions(top, t, tel["intervention"][:n])
    top.set_ylabel("curvature, 1/m")
    top.legend(fontsize=8, loc="upper right")
    top.grid(alpha=0.3)
    span = np.ptp(hidden, axis=0)
    scaled = (hidden - hidden.min(axis=0)) / np.where(span > 0, span, 1.0)
    if units <= 24:
        for i in range(units):
            bottom.plot(t, scaled[:, i] * 0.8 + i, lw=0.8)
        bottom.set_yticks(range(units))
        bottom.set_ylabel("neuron (each scaled to its range)")
        bottom.set_ylim(-0.3, units)
    else:
        image = bottom.imshow(
            scaled.T,
            aspect="auto",
            cmap="viridis",
            interpolation="nearest",
            extent=(t[0], t[-1], units - 0.5, -0.5),
        )
        bottom.set_ylabel("neuron")
        fig.colorbar(image, ax=bottom, label="activity, scaled to each neuron's range")
    _shade_interventions(bottom, t, tel["intervention"][:n])
    bottom.set_xlabel("simulation time, s")
    spec = outcome.spec
    fig.suptitle(
        f"{spec.label}: neuron activity, {spec.condition}, σ² = {spec.noise_variance:g}, seed {spec.seed}"
    )
    fig.savefig(path, dpi=110)
    return path


def plot_lipschitz(config: EvalConfig, analysis: dict[str, Any], path: Path) -> Path:
    """Per-neuron max local Lipschitz constants of the clean drives, one column of dots per policy."""
    fig = Figure(figsize=(1.6 + 1.3 * len(analysis["lipschitz"]), 3.4), layout="constrained")
    ax = fig.subplots()
    clean = noise_key(min(config.noise))
    names = []
    for i, (label, by_noise) in enumerate(analysis["lipschitz"].items()):
        values = np.asarray(by_noise.get(clean, []), np.float64)
        jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(len(values))
        ax.plot(i + jitter, values, "o", markersize=3, alpha=0.7)
        zeros = int(np.count_nonzero(values == 0))  # constant neurons (dead ReLUs): off a log axis
        names.append(f"{label}\n({zeros} at 0)" if zeros else label)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=20)
    ax.set_yscale("log")
    ax.set_ylabel("max |x(t+1) − x(t)| per neuron")
    ax.grid(alpha=0.3, which="both")
    fig.savefig(path, dpi=110)
    return path


def _draw_track(ax: Axes, track: Track) -> None:
    xy = track.centre_xy_m
    normal = np.stack([-np.sin(track.heading_rad), np.cos(track.heading_rad)], axis=1)
    half_road, half_lane = track.road_half_width_m, 0.5 * track.lane_width_m
    for side in (1, -1):
        edge = _closed(xy + side * half_road * normal)
        ax.plot(edge[:, 0], edge[:, 1], color="0.55", lw=0.8)
        lane = _closed(xy + side * half_lane * normal)
        ax.plot(lane[:, 0], lane[:, 1], color="0.8", lw=0.5, ls="--")


def _closed(points: np.ndarray) -> np.ndarray:
    """(M, 2) points with the first appended, so a drawn polyline closes the loop: (M + 1, 2)."""
    return np.vstack([points, points[:1]])


def _path_segments(
    x: np.ndarray, y: np.ndarray, speed: np.ndarray, dt_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive-point segments, leaving out jumps (teleports): (segments (M, 2, 2), kept mask (T-1,))."""
    pts = np.stack([x, y], axis=1).astype(np.float64)
    step = np.hypot(*np.diff(pts, axis=0).T)
    limit = 2.0 * np.maximum(speed[:-1], 1.0) * dt_s + 0.05
    keep = step <= limit
    segments = np.stack([pts[:-1], pts[1:]], axis=1)[keep]
    return segments, keep


def _shade_interventions(ax: Axes, t: np.ndarray, flags: np.ndarray) -> None:
    flags = np.asarray(flags, bool)
    if not flags.any():
        return
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(int), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
        ax.axvspan(t[start], t[min(stop, len(t) - 1)], color="red", alpha=0.12, lw=0)


def _series(noises: list[float], by_noise: dict[str, Any], metric: str) -> tuple[np.ndarray, np.ndarray]:
    stats = [by_noise[noise_key(n)][metric] for n in noises]
    mean = np.array([s["mean"] if s["mean"] is not None else np.nan for s in stats], np.float64)
    sd = np.array([s["sd"] if s["sd"] is not None else 0.0 for s in stats], np.float64)
    return mean, sd


def first_episode(outcomes: list[EpisodeOutcome], config: EvalConfig, noise: float) -> EpisodeOutcome | None:
    """The episode of the first condition and seed at `noise`."""
    for o in outcomes:
        if (
            o.spec.noise_variance == noise
            and o.spec.condition == config.conditions[0]
            and o.spec.seed == config.seeds[0]
        ):
            return o
    return None


def _safe(label: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label)
