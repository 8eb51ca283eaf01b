"""The evaluation report's attention sections, one per policy: the maps at each noise level (figure),
SSIM clean vs noisy per saliency method, the deletion/insertion faithfulness per method and noise level,
the methods' rank correlation, and the neuron map (figure).

Per episode (`attention_figures`, stored in metrics.json): `attention` (drive.eval.attention's figures)
and `ssim_by_method` (clean vs this noisy episode, same seed, per method). Tables give mean ± sd over the
episodes of a policy and noise level (evaluation seeds × conditions).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drive.eval.episode import EpisodeOutcome
from drive.eval.interpret import saliency_ssim
from drive.eval.plan import EvalConfig
from perception.saliency_methods import SALIENCY_ABBREVIATIONS


def attention_figures(
    config: EvalConfig, outcome: EpisodeOutcome, clean: EpisodeOutcome | None
) -> dict[str, Any]:
    """{"attention": figures or None, "ssim_by_method": {method: SSIM} or None} of one episode."""
    attention = outcome.attention
    if attention is None:
        return {"attention": None, "ssim_by_method": None}
    by_method = None
    if clean is not None and clean is not outcome and clean.attention is not None:
        by_method = {
            method: float(saliency_ssim(clean.attention.maps[method], maps, config.saliency_frames).mean())
            for method, maps in attention.maps.items()
            if method in clean.attention.maps
        }
    return {"attention": attention.figures, "ssim_by_method": by_method}


def attention_sections(
    config: EvalConfig, analysis: dict[str, Any], figures: Sequence[str] = ()
) -> list[str]:
    """Markdown: one `## Attention: <policy>` section per policy with attention figures."""
    episodes = [e for e in analysis["episodes"] if e.get("attention")]
    if not episodes:
        return []
    lines = [
        "",
        "## Attention (saliency), per policy",
        "",
        "Methods: "
        + ", ".join(f"{SALIENCY_ABBREVIATIONS[m]} (`{m}`)" for m in config.saliency_methods)
        + f"; the first {config.saliency_frames} frames of each episode. Faithfulness: deletion / insertion "
        f"test on {config.faithfulness_frames} evenly spaced frames (perception/faithfulness.py): AUC of "
        "|Δ curvature| (1/m) as the most salient pixels are greyed out (deletion, higher = more faithful) "
        "or put back (insertion, lower = more faithful), against random pixel orders; a method whose gain "
        "over random has a 95 % interval (over frames) above 0 in neither test is flagged **no better than "
        "random**.",
    ]
    for label in dict.fromkeys(e["label"] for e in episodes):
        mine = [e for e in episodes if e["label"] == label]
        lines += ["", f"### {label}", ""]
        images = [f"![{Path(f).stem}]({f})" for f in figures if Path(f).stem in _figure_stems(label)]
        lines += images + ([""] if images else [])
        lines += _ssim_table(config, mine) + _faithfulness_table(config, mine) + _rank_table(config, mine)
    return lines


def _figure_stems(label: str) -> set[str]:
    from drive.eval.attention_plots import safe_name

    return {f"attention_{safe_name(label)}", f"neuron_map_{safe_name(label)}"}


def _mean_sd(values: list[float], fmt: str) -> str:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return "—"
    text = fmt.format(float(np.mean(finite)))
    return text + (" ± " + fmt.format(float(np.std(finite, ddof=1))) if len(finite) > 1 else "")


def _ssim_table(config: EvalConfig, episodes: list[dict[str, Any]]) -> list[str]:
    noises = [n for n in config.noise if n > 0]
    if not noises or not any(e["ssim_by_method"] for e in episodes):
        return []
    lines = [
        "SSIM of the saliency, clean vs noisy (same seed, frame by frame; mean ± sd over episodes):",
        "",
        "| method | " + " | ".join(f"σ² = {n:g}" for n in noises) + " |",
        "|---" * (len(noises) + 1) + "|",
    ]
    for method in config.saliency_methods:
        cells = [
            _mean_sd(
                [
                    e["ssim_by_method"].get(method)
                    for e in episodes
                    if e["noise_variance"] == n and e["ssim_by_method"]
                ],
                "{:.3f}",
            )
            for n in noises
        ]
        lines.append(f"| {SALIENCY_ABBREVIATIONS[method]} | " + " | ".join(cells) + " |")
    return lines + [""]


def _faithfulness_table(config: EvalConfig, episodes: list[dict[str, Any]]) -> list[str]:
    if not any(e["attention"]["faithfulness"] for e in episodes):
        return []
    lines = [
        "Faithfulness (AUC of |Δ curvature|, 1e-3/m; mean over episodes; random = random pixel order):",
        "",
        "| method | σ² | deletion AUC (salient / random) | insertion AUC (salient / random) | "
        "better than random |",
        "|---|---|---|---|---|",
    ]
    for method in config.saliency_methods:
        for noise in config.noise:
            rows = [
                e["attention"]["faithfulness"][method]
                for e in episodes
                if e["noise_variance"] == noise and method in e["attention"]["faithfulness"]
            ]
            if not rows:
                continue

            def mean(key: str, rows: list[dict[str, Any]] = rows) -> float:
                return 1e3 * float(np.mean([r[key] for r in rows]))

            better = sum(bool(r["better_than_random"]) for r in rows)
            verdict = f"{better}/{len(rows)} episodes" + ("" if better else " — **no better than random**")
            lines.append(
                f"| {SALIENCY_ABBREVIATIONS[method]} | {noise:g} | {mean('deletion_auc'):.3f} / "
                f"{mean('deletion_random_auc'):.3f} | {mean('insertion_auc'):.3f} / "
                f"{mean('insertion_random_auc'):.3f} | {verdict} |"
            )
    return lines + [""]


def _rank_table(config: EvalConfig, episodes: list[dict[str, Any]]) -> list[str]:
    pairs = list(dict.fromkeys(p for e in episodes for p in e["attention"]["rank_correlation"]))
    if not pairs:
        return []
    lines = [
        "Agreement between methods: Spearman rank correlation of their maps, per frame, mean over frames "
        "(mean ± sd over episodes):",
        "",
        "| methods | " + " | ".join(f"σ² = {n:g}" for n in config.noise) + " |",
        "|---" * (len(config.noise) + 1) + "|",
    ]
    for pair in pairs:
        a, b = pair.split("|")
        cells = [
            _mean_sd(
                [e["attention"]["rank_correlation"].get(pair) for e in episodes if e["noise_variance"] == n],
                "{:.2f}",
            )
            for n in config.noise
        ]
        lines.append(
            f"| {SALIENCY_ABBREVIATIONS[a]} vs {SALIENCY_ABBREVIATIONS[b]} | " + " | ".join(cells) + " |"
        )
    return lines + [""]
