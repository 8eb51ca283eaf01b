"""The open-loop report: `metrics.json` (per run and aggregated) and `report.md` (tables).

Aggregates are per policy and noise level: for each noise seed the figures are pooled over the frames of
every episode (`drive.eval.open_loop_metrics.pool_metrics`), then mean ± sample sd over the noise seeds
(`drive.eval.report.summary`, the closed loop's). Saliency SSIM of a noisy run is against the clean run of
the same policy, episode and seed, frame by frame (`drive.eval.interpret.saliency_ssim`), averaged over
the episodes. The label's own whiteness is a property of the data, given once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drive.eval.interpret import pca, saliency_ssim
from drive.eval.open_loop import OpenLoopConfig, OpenLoopOutcome
from drive.eval.open_loop_metrics import pool_metrics
from drive.eval.report import _jsonable, format_stat, noise_key, summary

AGGREGATED = ("mae_1pm", "rmse_1pm", "bias_1pm", "whiteness_1pm_per_s", "ssim", "pc1_explained")
"""Figures aggregated per policy and noise level (mean ± sd over noise seeds)."""


def analyse(config: OpenLoopConfig, outcomes: list[OpenLoopOutcome]) -> dict[str, Any]:
    """Everything metrics.json holds except the config.

    Returns:
        {"runs": [...], "aggregate": {label: {noise: {metric: stats}}}, "by_architecture" (same shape,
         per registry name with several checkpoints), "label_whiteness_1pm_per_s",
         "data": {"episodes", "frames"}, "timing": {...}}
    """
    clean = {(o.run.label, o.run.episode, o.run.seed): o for o in outcomes if o.run.noise_variance == 0.0}
    runs = []
    for o in outcomes:
        reference = clean.get((o.run.label, o.run.episode, o.run.seed))
        ssim = None
        if reference is not None and reference is not o and o.saliency is not None:
            assert reference.saliency is not None  # same policy: saliency in both or in neither
            ssim = float(saliency_ssim(reference.saliency, o.saliency, config.saliency_frames).mean())
        pc1 = pca(o.hidden).pc1_explained if o.hidden is not None and len(o.hidden) >= 2 else None
        runs.append(
            {
                "id": o.run.run_id,
                "policy": o.run.policy,
                "label": o.run.label,
                "episode": o.run.episode,
                "noise_variance": o.run.noise_variance,
                "seed": o.run.seed,
                "metrics": o.metrics,
                "ssim": ssim,
                "pc1_explained": pc1,
                "video": o.video,
                "outputs": o.outputs,
            }
        )
    # One run per episode for the data's own figures (the label does not depend on policy or noise).
    first = list({o.run.episode: o for o in reversed(outcomes)}.values())
    wall_s = sum(o.wall_s for o in outcomes)
    frames = sum(int(o.metrics["frames"]) for o in outcomes)
    return {
        "runs": runs,
        "aggregate": (table := aggregate(config, runs)),
        "by_architecture": by_architecture(config, table),
        "label_whiteness_1pm_per_s": pool_metrics(o.metrics for o in first)["label_whiteness_1pm_per_s"],
        "data": {"episodes": len(first), "frames": int(sum(o.metrics["frames"] for o in first))},
        "timing": {
            "run_wall_s": wall_s,
            "frames": frames,
            "frames_per_s": frames / wall_s if wall_s else None,
        },
    }


def aggregate(config: OpenLoopConfig, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per policy and noise level: each seed's figures pooled over episodes, then mean ± sd over seeds."""
    table: dict[str, Any] = {}
    for label in dict.fromkeys(r["label"] for r in runs):
        table[label] = {}
        for noise in config.noise:
            per_seed: list[dict[str, Any]] = []
            for seed in config.seeds:
                mine = [
                    r
                    for r in runs
                    if r["label"] == label and r["noise_variance"] == noise and r["seed"] == seed
                ]
                if not mine:
                    continue
                pooled = pool_metrics(r["metrics"] for r in mine)
                for name in ("ssim", "pc1_explained"):
                    values = [r[name] for r in mine if r[name] is not None]
                    pooled[name] = float(np.mean(values)) if values else None
                per_seed.append(pooled)
            table[label][noise_key(noise)] = {name: summary(p[name] for p in per_seed) for name in AGGREGATED}
    return table


def by_architecture(config: OpenLoopConfig, table: dict[str, Any]) -> dict[str, Any]:
    """Per registry name given as several checkpoints (labels `name@stem`, e.g. training seeds): mean ± sd
    over the checkpoints of each one's mean; names given once are left out."""
    groups: dict[str, list[str]] = {}
    for label in table:
        groups.setdefault(label.split("@")[0], []).append(label)
    return {
        name: {
            noise_key(n): {
                metric: summary(table[label][noise_key(n)][metric]["mean"] for label in labels)
                for metric in AGGREGATED
            }
            for n in config.noise
        }
        for name, labels in groups.items()
        if len(labels) > 1
    }


def write_report(
    config: OpenLoopConfig, analysis: dict[str, Any], out_dir: str | Path, figures: Sequence[str] = ()
) -> dict[str, Any]:
    """Write metrics.json and report.md into `out_dir`; returns the metrics.json content."""
    from common.strict_config import to_dict

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    content = {"mode": "open_loop", "config": to_dict(config), **analysis, "figures": list(figures)}
    (out / "metrics.json").write_text(json.dumps(_jsonable(content), indent=1, allow_nan=False) + "\n")
    (out / "report.md").write_text(render_markdown(config, analysis, figures))
    return content


def render_markdown(config: OpenLoopConfig, analysis: dict[str, Any], figures: Sequence[str] = ()) -> str:
    """report.md: the set-up, the tables, the figures, the videos and the per-run list."""
    agg = analysis["aggregate"]
    data = analysis["data"]
    lines = [
        "# Open-loop evaluation",
        "",
        f"Recorded drives under `{config.data}`: {data['episodes']} episode(s), {data['frames']} frames"
        + (f" (at most {config.max_frames} per episode)" if config.max_frames else "")
        + f". Each policy sees every frame in order (recurrent state carried), scored against the "
        f"recorded `{config.label}`. Noise seeds: {', '.join(map(str, config.seeds))}; figures pooled over "
        "the frames of all episodes, mean ± sd over noise seeds.",
        "",
        "Camera noise as in the closed loop: zero-mean Gaussian, variance σ² per pixel on the [0, 1] image"
        + (" (standardised input space)" if config.noise_space == "standardized" else "")
        + ", the same noise for every policy (drawn from the noise seed, the episode and the frame)"
        + (f"; further perturbations: {config.perturbations}" if config.perturbations else "")
        + ".",
        "",
        "Policies: " + ", ".join(f"`{label}`" for label in agg),
    ]
    tables = [
        ("Curvature MAE against the label, 1/m", "mae_1pm", "{:.4f}"),
        ("Curvature RMSE against the label, 1/m", "rmse_1pm", "{:.4f}"),
        ("Mean signed error (bias), 1/m", "bias_1pm", "{:.4f}"),
        (
            "Steering whiteness: RMS rate of the curvature output, 1/m/s (lower is smoother; the label's "
            f"own: {analysis['label_whiteness_1pm_per_s']:.4f})",
            "whiteness_1pm_per_s",
            "{:.4f}",
        ),
    ]
    for title, metric, fmt in tables:
        lines += ["", f"## {title}", "", *_metric_table(config, agg, metric, fmt)]
    if analysis["by_architecture"]:
        title = "By architecture: mean ± sd over its checkpoints (e.g. training seeds)"
        lines += ["", f"## {title}", ""]
        for caption, metric, fmt in (tables[0], tables[3]):
            lines += [f"**{caption.split(' (')[0]}**", ""]
            lines += [*_metric_table(config, analysis["by_architecture"], metric, fmt), ""]
    if any(r["ssim"] is not None for r in analysis["runs"]):
        lines += [
            "",
            f"## Saliency SSIM, clean vs noisy (VisualBackProp, first {config.saliency_frames} frames)",
            "",
        ]
        lines += _metric_table(config, agg, "ssim", "{:.3f}", skip_clean=True)
    if figures:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures]
    videos = [r["video"] for r in analysis["runs"] if r["video"]]
    if videos:
        lines += ["", "## Videos (saliency on the recorded frames)", ""] + [
            f"- [{Path(v).stem}]({v})" for v in videos
        ]
    lines += [
        "",
        "## Runs",
        "",
        "| run | frames | MAE 1/m | RMSE 1/m | whiteness 1/m/s | SSIM |",
        "|---" * 6 + "|",
    ]
    for r in analysis["runs"]:
        m = r["metrics"]
        ssim = f"{r['ssim']:.3f}" if r["ssim"] is not None else "—"
        lines.append(
            f"| {r['id']} | {m['frames']} | {m['mae_1pm']:.4f} | {m['rmse_1pm']:.4f} | "
            f"{m['whiteness_1pm_per_s']:.4f} | {ssim} |"
        )
    timing = analysis["timing"]
    if timing["frames_per_s"]:
        lines += [
            "",
            f"{timing['frames']} frames replayed in {timing['run_wall_s']:.1f} s "
            f"({timing['frames_per_s']:.0f} frames/s).",
        ]
    return "\n".join(lines) + "\n"


def _metric_table(
    config: OpenLoopConfig, agg: dict[str, Any], metric: str, fmt: str, skip_clean: bool = False
) -> list[str]:
    noises = [n for n in config.noise if not (skip_clean and n == 0.0)]
    lines = [
        "| policy | " + " | ".join(f"σ² = {n:g}" for n in noises) + " |",
        "|---" * (len(noises) + 1) + "|",
    ]
    for label, by_noise in agg.items():
        lines.append(
            f"| {label} | "
            + " | ".join(format_stat(by_noise[noise_key(n)][metric], fmt) for n in noises)
            + " |"
        )
    return lines
