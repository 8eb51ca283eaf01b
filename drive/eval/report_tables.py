"""The markdown tables of the evaluation report (`drive.eval.report`): per metric and noise level, and per
episode; mean ± sd formatting."""

from __future__ import annotations

import math
from typing import Any

from drive.eval.plan import EvalConfig


def noise_key(variance: float) -> str:
    """JSON key of a noise level: `0`, `0.1`, ..."""
    return f"{variance:g}"


def metric_table(
    config: EvalConfig, agg: dict[str, Any], condition: str, metric: str, fmt: str, skip_clean: bool = False
) -> list[str]:
    noises = [n for n in config.noise if not (skip_clean and n == 0.0)]
    lines = [
        "| policy | " + " | ".join(f"σ² = {n:g}" for n in noises) + " |",
        "|---" * (len(noises) + 1) + "|",
    ]
    for label, by_condition in agg.items():
        cells = [format_stat(by_condition[condition][noise_key(n)][metric], fmt) for n in noises]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def format_stat(stat: dict[str, Any], fmt: str = "{:.2f}") -> str:
    """`mean ± sd`, `mean` for a single value, `—` when there is none."""
    if stat["mean"] is None:
        return "—"
    text = fmt.format(stat["mean"])
    if stat["sd"] is not None:
        text += " ± " + fmt.format(stat["sd"])
    return text


def episode_table(episodes: list[dict[str, Any]]) -> list[str]:
    head = (
        "| episode | interventions | per km | autonomy % | mean \\|offset\\| m | max \\|offset\\| m | "
        "RMS κ rate | distance m | laps | PC1 | SSIM |"
    )
    lines = [head, "|---" * 11 + "|"]
    for e in episodes:
        m = e["metrics"]
        pc1 = f"{e['pc1_explained']:.1%}" if e["pc1_explained"] is not None else "—"
        ssim_text = f"{e['ssim']:.3f}" if e["ssim"] is not None else "—"
        lines.append(
            f"| {e['id']} | {m['interventions']} | {_num(m['interventions_per_km'], '{:.2f}')} | "
            f"{m['autonomy_pct']:.1f} | {_num(m['mean_abs_offset_m'], '{:.3f}')} | "
            f"{_num(m['max_abs_offset_m'], '{:.3f}')} | {m['rms_curvature_rate_1pm_per_s']:.4f} | "
            f"{m['distance_m']:.0f} | {m['laps']} | {pc1} | {ssim_text} |"
        )
    return lines


def _num(value: float, fmt: str) -> str:
    return fmt.format(value) if value is not None and math.isfinite(value) else "—"
