"""The attention figures of an evaluation (matplotlib, Agg, no global pyplot state):

- `attention_<policy>.png`: one row per noise level (first condition and seed): the frame the network
  saw in the middle of the saliency window, each method's map over it, and each method's mean map over
  the window (where the policy looks on average);
- `neuron_map_<policy>.png`: the paper's Fig. 6 view: the clean drive on the track map, once per neuron,
  coloured by that neuron's activity (scaled to its range), titled by its layer (inter / command /
  motor) for a wired head; for other heads the same for the top principal components of the activity.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from drive.eval.episode import EpisodeOutcome
from drive.eval.interpret import pca
from drive.eval.plan import EvalConfig
from drive.eval.plots import _draw_track, _path_segments, first_episode
from drive.eval.videos import saliency_overlay
from perception.saliency_methods import SALIENCY_ABBREVIATIONS
from sim.tracks.track import Track

TOP_COMPONENTS = 6
"""Principal components drawn on the map for a head without a wiring."""


def safe_name(label: str) -> str:
    """A file-name-safe form of a policy label."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label)


def plot_attention_maps(config: EvalConfig, outcomes: list[EpisodeOutcome], path: Path) -> Path | None:
    """The maps figure of one policy (its episodes); None when no episode has attention."""
    firsts = [first_episode(outcomes, config, n) for n in config.noise]
    rows = [o for o in firsts if o is not None and o.attention is not None]
    if not rows:
        return None
    methods = list(config.saliency_methods)
    cols = 1 + 2 * len(methods)
    fig = Figure(figsize=(2.3 * cols, 1.15 * len(rows) + 0.6), layout="constrained")
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for r, outcome in enumerate(rows):
        attention = outcome.attention
        assert attention is not None  # filtered above
        frame = int(attention.example["frame"])
        image = np.asarray(attention.example["image"])
        panels = [(image, f"σ² = {outcome.spec.noise_variance:g}, frame {frame}")]
        for method in methods:
            panels.append(
                (saliency_overlay(image, attention.maps[method][frame]), SALIENCY_ABBREVIATIONS[method])
            )
        for method in methods:
            mean_map = attention.maps[method].astype(np.float32).mean(axis=0)
            scaled = np.round(255 * mean_map / max(float(mean_map.max()), 1e-6)).astype(np.uint8)
            panels.append((saliency_overlay(image, scaled), f"{SALIENCY_ABBREVIATIONS[method]}, window mean"))
        for c, (picture, title) in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(picture)
            ax.set_title(title, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    spec = rows[0].spec
    fig.suptitle(f"{spec.label}: where it looks ({spec.condition}, episode seed {spec.seed})", fontsize=9)
    fig.savefig(path, dpi=100)
    return path


def neuron_panels(outcome: EpisodeOutcome) -> list[tuple[str, np.ndarray]]:
    """(title, (T,) colour) per panel: every neuron of a wired head, else the top principal components."""
    hidden = outcome.hidden
    if hidden is None:
        return []
    if outcome.neuron_types is not None:
        return [(f"{kind} {i}", hidden[:, i]) for i, kind in enumerate(outcome.neuron_types)]
    result = pca(hidden)
    k = min(TOP_COMPONENTS, result.projections.shape[1])
    return [
        (f"PC{i + 1} ({result.explained_variance_ratio[i]:.0%})", result.projections[:, i]) for i in range(k)
    ]


def plot_neuron_map(config: EvalConfig, track: Track, outcome: EpisodeOutcome, path: Path) -> Path | None:
    """Each neuron's (or component's) activity coloured along the driven path on the track map."""
    panels = neuron_panels(outcome)
    if not panels:
        return None
    cols = min(5, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(2.6 * cols, 2.6 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    tel = outcome.telemetry
    segments, keep = _path_segments(tel["x_m"], tel["y_m"], tel["speed_mps"], config.control_period_s)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    for ax, (title, colour) in zip(axes.ravel(), panels):
        _draw_track(ax, track)
        span = float(np.ptp(colour))
        scaled = (colour - colour.min()) / (span if span > 0 else 1.0)
        ax.add_collection(
            LineCollection(
                list(segments), array=scaled[:-1][keep], cmap="coolwarm", linewidths=1.8, clim=(0, 1)
            )
        )
        ax.set_title(title, fontsize=8)
        _zoom_to(ax, tel["x_m"], tel["y_m"])
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    spec = outcome.spec
    what = "neuron" if outcome.neuron_types is not None else "principal component"
    fig.suptitle(
        f"{spec.label}: each {what}'s activity along the drive (blue low, red high, scaled per panel); "
        f"{spec.condition}, σ² = {spec.noise_variance:g}, episode seed {spec.seed}",
        fontsize=9,
    )
    fig.savefig(path, dpi=100)
    return path


def _zoom_to(ax: Axes, x: np.ndarray, y: np.ndarray, margin_frac: float = 0.15) -> None:
    """Frame the driven path (a short drive is a few pixels of a whole-track map), with a margin."""
    span = max(float(np.ptp(x)), float(np.ptp(y)), 20.0)
    margin = margin_frac * span
    cx, cy = 0.5 * (float(np.min(x)) + float(np.max(x))), 0.5 * (float(np.min(y)) + float(np.max(y)))
    ax.set_xlim(cx - 0.5 * span - margin, cx + 0.5 * span + margin)
    ax.set_ylim(cy - 0.5 * span - margin, cy + 0.5 * span + margin)
