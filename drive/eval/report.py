"""The evaluation report: per-episode and aggregated metrics (`metrics.json`) and tables (`report.md`).

Aggregates are mean ± sample standard deviation (ddof = 1; none for a single value) over seeds, per
policy and noise level, for each condition and pooled over all conditions. Interpretability figures per
episode: PC1 explained variance of the hidden activity, per-neuron max local Lipschitz constant (steps
across a safety-driver teleport left out: the camera jumps there), and for noisy episodes the SSIM of
their saliency against the clean episode with the same policy, condition and seed, frame by frame.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drive.eval.attention_report import attention_figures, attention_sections
from drive.eval.deploy_report import aggregate_deploy, deploy_section
from drive.eval.engine import engine_lines
from drive.eval.episode import EpisodeOutcome
from drive.eval.interpret import max_lipschitz, pca, saliency_ssim
from drive.eval.plan import EvalConfig, eval_track
from drive.eval.report_tables import episode_table, metric_table
from drive.eval.report_tables import format_stat as format_stat
from drive.eval.report_tables import noise_key as noise_key
from perception.saliency_methods import SALIENCY_ABBREVIATIONS

ALL = "all"
"""Key of the aggregate pooled over conditions."""

AGGREGATED = (
    "interventions",
    "interventions_per_km",
    "autonomy_pct",
    "mean_abs_offset_m",
    "max_abs_offset_m",
    "rms_curvature_rate_1pm_per_s",
    "distance_m",
    "laps",
    "pc1_explained",
    "ssim",
)
"""Per-episode figures that are aggregated (mean ± sd)."""


def episode_analysis(
    config: EvalConfig, outcome: EpisodeOutcome, clean: EpisodeOutcome | None
) -> dict[str, Any]:
    """Interpretability figures of one episode (JSON-able).

    Args:
        config: the evaluation (its safety-driver response and saliency window).
        outcome: the episode.
        clean: the noise-free episode with the same policy, condition and seed (for SSIM), if any.
    """
    figures: dict[str, Any] = {"pc1_explained": None, "lipschitz": None, "ssim": None, "ssim_frames": 0}
    if outcome.hidden is not None and len(outcome.hidden) >= 2:
        figures["pc1_explained"] = pca(outcome.hidden).pc1_explained
        breaks = []
        if config.safety.response == "teleport":
            frames = outcome.telemetry["frame"]
            breaks = [int(np.searchsorted(frames, row["frame"])) for row in outcome.interventions]
        figures["lipschitz"] = [float(v) for v in max_lipschitz(outcome.hidden, breaks)]
    if (
        clean is not None
        and clean is not outcome
        and outcome.saliency is not None
        and clean.saliency is not None
    ):
        per_frame = saliency_ssim(clean.saliency, outcome.saliency, config.saliency_frames)
        figures["ssim"] = float(per_frame.mean())
        figures["ssim_frames"] = int(len(per_frame))
    figures.update(attention_figures(config, outcome, clean))
    return figures


def analyse(config: EvalConfig, outcomes: list[EpisodeOutcome]) -> dict[str, Any]:
    """Everything metrics.json holds except the config: episodes, aggregates, timing.

    Returns:
        {"episodes": [...], "aggregate": {label: {condition|"all": {noise: {metric: stats}}}},
         "lipschitz": {label: {noise: per-neuron max over the episodes}}, "timing": {...}}
    """
    clean = {
        (o.spec.label, o.spec.condition, o.spec.seed, o.spec.deploy): o
        for o in outcomes
        if o.spec.noise_variance == 0.0
    }
    episodes = []
    for outcome in outcomes:
        spec = outcome.spec
        figures = episode_analysis(
            config, outcome, clean.get((spec.label, spec.condition, spec.seed, spec.deploy))
        )
        episodes.append(
            {
                "id": spec.episode_id,
                "policy": spec.policy,
                "label": spec.label,
                "condition": spec.condition,
                "noise_variance": spec.noise_variance,
                "seed": spec.seed,
                "deploy": spec.deploy,
                "metrics": outcome.metrics,
                **figures,
                "interventions": outcome.interventions,
                "video": outcome.video,
            }
        )
    wall_s = sum(o.wall_s for o in outcomes)
    frames = sum(int(o.metrics["frames"]) for o in outcomes)
    return {
        "episodes": episodes,
        "aggregate": aggregate(config, episodes),
        "deploy": aggregate_deploy(config, episodes, AGGREGATED),
        "lipschitz": _lipschitz_by_policy(config, episodes),
        "timing": {
            "episode_wall_s": wall_s,
            "frames": frames,
            "steps_per_s": frames / wall_s if wall_s else None,
        },
    }


def aggregate(config: EvalConfig, episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± sd of `AGGREGATED` per policy, per condition (and pooled as "all"), per noise level, in
    the first deployment setting (`aggregate_deploy` compares the settings)."""
    episodes = [e for e in episodes if e.get("deploy", "none") == config.deploy[0]]
    table: dict[str, Any] = {}
    labels = list(dict.fromkeys(e["label"] for e in episodes))
    for label in labels:
        table[label] = {}
        for condition in [ALL, *config.conditions]:
            table[label][condition] = {}
            for noise in config.noise:
                rows = [
                    e
                    for e in episodes
                    if e["label"] == label
                    and e["noise_variance"] == noise
                    and (condition == ALL or e["condition"] == condition)
                ]
                table[label][condition][noise_key(noise)] = {
                    name: summary(_figure(r, name) for r in rows) for name in AGGREGATED
                }
    return table


def summary(values: Iterable[float | None]) -> dict[str, Any]:
    """Mean, sample sd (None for n < 2) and count n of the finite values; mean None for n = 0."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(finite)
    return {
        "mean": float(np.mean(finite)) if n else None,
        "sd": float(np.std(finite, ddof=1)) if n > 1 else None,
        "n": n,
    }


def write_report(
    config: EvalConfig,
    outcomes: list[EpisodeOutcome],
    analysis: dict[str, Any],
    out_dir: str | Path,
    figures: Sequence[str] = (),
) -> dict[str, Any]:
    """Write metrics.json and report.md into `out_dir`; returns the metrics.json content."""
    from common.strict_config import to_dict

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    content = {"config": to_dict(config), **analysis, "figures": list(figures)}
    (out / "metrics.json").write_text(json.dumps(_jsonable(content), indent=1, allow_nan=False) + "\n")
    (out / "report.md").write_text(render_markdown(config, analysis, figures))
    return content


def render_markdown(config: EvalConfig, analysis: dict[str, Any], figures: Sequence[str] = ()) -> str:
    """report.md: the set-up, then the tables, the figures and the per-episode list."""
    agg = analysis["aggregate"]
    lines = _setup_lines(config, analysis, list(agg))
    lines += _metric_sections(config, agg)
    lines += deploy_section(config, analysis.get("deploy", {}))
    lines += _analysis_sections(config, analysis)
    lines += attention_sections(config, analysis, figures)
    if figures:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures]
    videos = [e["video"] for e in analysis["episodes"] if e["video"]]
    if videos:
        lines += ["", "## Videos", ""] + [f"- [{Path(v).stem}]({v})" for v in videos]
    lines += ["", "## Episodes", ""] + episode_table(analysis["episodes"])
    timing = analysis["timing"]
    if timing["steps_per_s"]:
        lines += [
            "",
            f"{timing['frames']} control steps in {timing['episode_wall_s']:.0f} s of episode time "
            f"({timing['steps_per_s']:.0f} steps/s per worker).",
        ]
    return "\n".join(lines) + "\n"


def _setup_lines(config: EvalConfig, analysis: dict[str, Any], labels: list[str]) -> list[str]:
    """The report's title and set-up: track, conditions, episode limits, safety driver, noise, policies."""
    sd = config.safety
    track = eval_track(config)
    about = (
        f"{track.length_m:.0f} m, lane {track.lane_width_m:g} m, marking {track.marking}"
        if track is not None
        else "map from the CARLA server"
    )
    return [
        "# Closed-loop evaluation",
        "",
        f"Track `{config.track}` ({about}) on the {config.sim} simulator — evaluate on a track the policies "
        "did not train on. Conditions: "
        f"{', '.join(config.conditions)}. Seeds: {', '.join(map(str, config.seeds))}. Episode: "
        + _episode_limit_text(config)
        + f". Speed {config.target_speed_mps:g} m/s, control {1 / config.control_period_s:g} Hz "
        "(simulation time).",
        "",
        f"Safety driver: intervenes at |lateral offset| > {sd.max_offset_m:g} m, |heading error| > "
        f"{math.degrees(sd.max_heading_error_rad):.0f}°"
        + (", off the road" if sd.trigger_off_road else "")
        + (", collision" if sd.trigger_collision else "")
        + f", stuck below {sd.stuck_speed_mps:g} m/s for {sd.stuck_time_s:g} s; "
        + (
            f"teleports the car to the lane centre and the expert drives {sd.cooldown_s:g} s, then "
            "re-engages."
            if sd.response == "teleport"
            else f"the expert drives {sd.takeover_s:g} s from where the car is, then re-engages."
        )
        + " Every intervention counts as one crash (the NCP paper).",
        "",
        "Camera noise: zero-mean Gaussian, variance σ² per pixel on the [0, 1] image, the same noise for "
        "every policy (drawn from the episode seed and frame number)"
        + (f"; further perturbations: {config.perturbations}" if config.perturbations else "")
        + ".",
        "",
        *engine_lines(analysis.get("engine")),
        "Policies:",
        "",
        *_policy_lines(analysis.get("policies"), labels, config),
    ]


def _metric_sections(config: EvalConfig, agg: dict[str, Any]) -> list[str]:
    """The driving-metric tables: interventions (per condition when several), per km, autonomy, offset,
    smoothness."""
    lines = ["", "## Interventions per episode (mean ± sd over seeds)", ""]
    for condition in [ALL, *config.conditions] if len(config.conditions) > 1 else [ALL]:
        if len(config.conditions) > 1:
            title = "all conditions (over conditions × seeds)" if condition == ALL else condition
            lines += [f"**{title}**", ""]
        lines += metric_table(config, agg, condition, "interventions", "{:.2f}") + [""]
    lines += ["## Interventions per km", ""] + metric_table(
        config, agg, ALL, "interventions_per_km", "{:.2f}"
    )
    lines += ["", "## Autonomy % (PilotNet: 1 − interventions · 6 s / elapsed time)", ""]
    lines += metric_table(config, agg, ALL, "autonomy_pct", "{:.1f}")
    lines += ["", "## Mean |lateral offset| while the policy drives, m", ""]
    lines += metric_table(config, agg, ALL, "mean_abs_offset_m", "{:.3f}")
    lines += ["", "## Steering smoothness: RMS curvature rate while the policy drives, 1/m/s", ""]
    lines += metric_table(config, agg, ALL, "rms_curvature_rate_1pm_per_s", "{:.4f}")
    return lines


def _analysis_sections(config: EvalConfig, analysis: dict[str, Any]) -> list[str]:
    """The interpretability tables, each only when measured: saliency SSIM, PC1 variance, Lipschitz."""
    agg = analysis["aggregate"]
    lines: list[str] = []
    if any(e["ssim"] is not None for e in analysis["episodes"]):
        lines += [
            "",
            f"## Saliency SSIM, clean vs noisy ({SALIENCY_ABBREVIATIONS[config.saliency_methods[0]]}, first "
            f"{config.saliency_frames} frames, "
            "paired by frame index, same seed)",
            "",
        ]
        lines += metric_table(config, agg, ALL, "ssim", "{:.3f}", skip_clean=True)
    if any(e["pc1_explained"] is not None for e in analysis["episodes"]):
        lines += ["", "## PC1 explained variance of the hidden activity (the CNN: its last hidden layer)", ""]
        lines += metric_table(config, agg, ALL, "pc1_explained", "{:.1%}")
    if analysis["lipschitz"]:
        lines += ["", "## Max local Lipschitz constant per neuron, max_t |x(t+1) − x(t)| (clean drives)", ""]
        lines += ["| policy | neurons | median | max |", "|---|---|---|---|"]
        for label, by_noise in analysis["lipschitz"].items():
            values = by_noise.get(noise_key(min(config.noise)))
            if values:
                lines.append(f"| {label} | {len(values)} | {np.median(values):.4f} | {np.max(values):.4f} |")
    return lines


def _policy_lines(policies: list[dict[str, Any]] | None, labels: list[str], config: EvalConfig) -> list[str]:
    """One bullet per policy: label, checkpoint, training step, the tracks it trained on."""
    if not policies:
        return [f"- `{label}`: {policy}" for label, policy in zip(labels, config.policies)]
    lines = []
    for row in policies:
        if row["policy"] == "expert":
            lines.append(
                "- `expert`: the simulator's privileged pure-pursuit expert (reference; sees no camera)"
            )
            continue
        text = f"- `{row['label']}` ({row['name']}): {row['policy']}, step {row['step']}"
        if row["trained_tracks"]:
            text += ", trained on " + ", ".join(row["trained_tracks"])
        if row["trained_on_eval_track"]:
            text += f" — **warning: trained on the evaluation track `{config.track}`**"
        lines.append(text)
    return lines


def _episode_limit_text(config: EvalConfig) -> str:
    parts = []
    if config.laps is not None:
        parts.append(f"{config.laps} lap{'s' if config.laps != 1 else ''}")
    if config.max_steps is not None:
        parts.append(f"at most {config.max_steps} steps")
    if config.max_time_s is not None:
        parts.append(f"at most {config.max_time_s:g} s")
    return ", ".join(parts)


def _figure(row: dict[str, Any], name: str) -> float | None:
    value = row["metrics"][name] if name in row["metrics"] else row.get(name)
    return None if value is None else float(value)


def _lipschitz_by_policy(config: EvalConfig, episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Per policy and noise level, each neuron's max Lipschitz constant over the episodes."""
    out: dict[str, Any] = {}
    for e in episodes:
        if e["lipschitz"] is None:
            continue
        by_noise = out.setdefault(e["label"], {})
        key = noise_key(e["noise_variance"])
        prev = by_noise.get(key)
        by_noise[key] = e["lipschitz"] if prev is None else [max(a, b) for a, b in zip(prev, e["lipschitz"])]
    return out


def _jsonable(value: Any) -> Any:
    """NaN and infinity become None (JSON has neither); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
