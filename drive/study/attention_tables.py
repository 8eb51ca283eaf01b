"""A study's attention figures over training seeds: faithfulness (deletion / insertion AUCs and their gain
over random pixel orders), SSIM clean vs noisy and the methods' rank correlation, per protocol, policy,
saliency method and noise level, each with a 95 % bootstrap interval over training seeds (`stats`).

Each model's value is the mean over its evaluation episodes (the per-episode figures of
`drive.eval.attention`); a method is flagged **no better than random** for a policy when neither its
deletion gain nor its insertion gain has an interval above 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from drive.study.jobs import eval_dir
from drive.study.stats import Interval, mean_interval
from drive.study.study_plan import EvalJob, StudyConfig
from drive.study.tables import evaluated_episodes
from perception.saliency_methods import SALIENCY_ABBREVIATIONS

FAITHFULNESS = ("deletion_auc", "deletion_random_auc", "insertion_auc", "insertion_random_auc")


def attention_seed_values(config: StudyConfig) -> dict[tuple[str, str, str, float, str], dict[int, float]]:
    """{(protocol, policy, method, noise, figure): {training seed: mean over the model's episodes}}.

    Figures: the four AUCs, `deletion_gain`, `insertion_gain` (from the AUC means), `ssim`, and
    `rank:<other method>` (Spearman ρ of the method's maps with another's, each pair once).
    """
    per_episode: dict[tuple[str, str, str, float, str], dict[int, list[float]]] = {}

    def add(key: tuple[str, str, str, float, str], seed: int, value: float | None) -> None:
        if value is not None and np.isfinite(value):
            per_episode.setdefault(key, {}).setdefault(seed, []).append(float(value))

    for protocol, policy, seed, episode in evaluated_episodes(config):
        attention = episode.get("attention")
        if not attention:
            continue
        noise = float(episode["noise_variance"])
        for method, figures in attention["faithfulness"].items():
            for name in FAITHFULNESS:
                add((protocol, policy, method, noise, name), seed, figures[name])
        for method, value in (episode.get("ssim_by_method") or {}).items():
            add((protocol, policy, method, noise, "ssim"), seed, value)
        for pair, value in attention["rank_correlation"].items():
            a, b = pair.split("|")
            add((protocol, policy, a, noise, f"rank:{b}"), seed, value)
    means = {
        k: {s: float(np.mean(v)) for s, v in sorted(by_seed.items())} for k, by_seed in per_episode.items()
    }
    for key in list(means):
        if key[4] != "deletion_auc":
            continue
        base = key[:4]
        for gain, salient, random_, sign in (
            ("deletion_gain", "deletion_auc", "deletion_random_auc", 1.0),
            ("insertion_gain", "insertion_auc", "insertion_random_auc", -1.0),
        ):
            a, b = means.get(base + (salient,), {}), means.get(base + (random_,), {})
            means[base + (gain,)] = {s: sign * (a[s] - b[s]) for s in a if s in b}
    return means


def attention_aggregate(config: StudyConfig) -> dict[tuple[str, str, str, float, str], Interval]:
    """Every `attention_seed_values` entry as a mean with its interval over training seeds."""
    return {k: mean_interval(list(v.values())) for k, v in attention_seed_values(config).items()}


def is_better_than_random(
    agg: dict[tuple[str, str, str, float, str], Interval], base: tuple[Any, ...]
) -> bool:
    """Deletion or insertion gain of (protocol, policy, method, noise) with an interval above 0."""
    gains = [agg.get((*base, name)) for name in ("deletion_gain", "insertion_gain")]
    return any(g is not None and np.isfinite(g.low) and g.low > 0 for g in gains)


def attention_json(agg: dict[tuple[str, str, str, float, str], Interval]) -> dict[str, Any]:
    """{protocol: {policy: {method: {noise: {figure: interval}}}}} for study.json."""
    out: dict[str, Any] = {}
    for (protocol, policy, method, noise, name), interval in sorted(agg.items()):
        node = out.setdefault(protocol, {}).setdefault(policy, {}).setdefault(method, {})
        node.setdefault(f"{noise:g}", {})[name] = interval.to_dict()
    return out


def attention_section(
    config: StudyConfig, agg: dict[tuple[str, str, str, float, str], Interval]
) -> list[str]:
    """report.md: faithfulness, SSIM and rank-correlation tables with intervals, then per policy the first
    training seed's maps and neuron map."""
    if not agg:
        return []
    lines = [
        "## Attention: faithfulness of the saliency maps, SSIM, agreement between methods",
        "",
        "Deletion / insertion test (perception/faithfulness.py) on evenly spaced frames of each episode's "
        "saliency window: AUC of |Δ curvature| in 1e-3/m as the most salient pixels are greyed out "
        "(deletion: higher = more faithful) or put back (insertion: lower = more faithful); *random* is "
        "the same test with random pixel orders; *gain* is the advantage over random (> 0 = better). "
        "Means over training seeds with 95 % bootstrap intervals; a method whose deletion and insertion "
        "gains both have intervals reaching 0 or below is flagged **no better than random**.",
        "",
    ]
    for protocol in config.protocols:
        keys = [k for k in agg if k[0] == protocol.name]
        if not keys:
            continue
        lines += [f"**{protocol.name}**", ""]
        lines += _faithfulness_rows(config, protocol.name, agg) + [""]
        lines += _ssim_rows(config, protocol.name, agg) + _rank_rows(config, protocol.name, agg)
        lines += _figures(config, protocol.name)
    return lines


def _methods(agg: dict[tuple[str, str, str, float, str], Interval], protocol: str, policy: str) -> list[str]:
    found = {k[2] for k in agg if k[0] == protocol and k[1] == policy}
    return [m for m in SALIENCY_ABBREVIATIONS if m in found]


def _noises(agg: dict[tuple[str, str, str, float, str], Interval], protocol: str) -> list[float]:
    return sorted({k[3] for k in agg if k[0] == protocol})


def _faithfulness_rows(
    config: StudyConfig, protocol: str, agg: dict[tuple[str, str, str, float, str], Interval]
) -> list[str]:
    lines = [
        "| policy | method | σ² | deletion AUC | random | deletion gain | insertion AUC | random | "
        "insertion gain | verdict |",
        "|---" * 10 + "|",
    ]
    for policy in config.train.policies:
        for method in _methods(agg, protocol, policy):
            for noise in _noises(agg, protocol):
                base = (protocol, policy, method, noise)
                if (*base, "deletion_auc") not in agg:
                    continue
                cells = [_scaled(agg.get((*base, name))) for name in (
                    "deletion_auc", "deletion_random_auc", "deletion_gain",
                    "insertion_auc", "insertion_random_auc", "insertion_gain",
                )]  # fmt: skip
                verdict = (
                    "better than random" if is_better_than_random(agg, base) else "**no better than random**"
                )
                lines.append(
                    f"| {policy} | {SALIENCY_ABBREVIATIONS[method]} | {noise:g} | "
                    + " | ".join(cells)
                    + f" | {verdict} |"
                )
    return lines


def _scaled(interval: Interval | None) -> str:
    if interval is None:
        return "–"
    return Interval(1e3 * interval.mean, 1e3 * interval.low, 1e3 * interval.high, interval.n).format(3)


def _ssim_rows(
    config: StudyConfig, protocol: str, agg: dict[tuple[str, str, str, float, str], Interval]
) -> list[str]:
    noises = [n for n in _noises(agg, protocol) if n > 0]
    if not noises:
        return []
    lines = [
        "SSIM of the saliency, clean vs noisy (same episode seed, frame by frame):",
        "",
        "| policy | method | " + " | ".join(f"σ² = {n:g}" for n in noises) + " |",
        "|---" * (len(noises) + 2) + "|",
    ]
    for policy in config.train.policies:
        for method in _methods(agg, protocol, policy):
            cells = [
                agg[k].format(3) if (k := (protocol, policy, method, n, "ssim")) in agg else "–"
                for n in noises
            ]
            lines.append(f"| {policy} | {SALIENCY_ABBREVIATIONS[method]} | " + " | ".join(cells) + " |")
    return lines + [""]


def _rank_rows(
    config: StudyConfig, protocol: str, agg: dict[tuple[str, str, str, float, str], Interval]
) -> list[str]:
    pairs = sorted({(k[1], k[2], k[4][5:]) for k in agg if k[0] == protocol and k[4].startswith("rank:")})
    if not pairs:
        return []
    noises = _noises(agg, protocol)
    lines = [
        "Agreement between methods (Spearman rank correlation of the maps, per frame, mean):",
        "",
        "| policy | methods | " + " | ".join(f"σ² = {n:g}" for n in noises) + " |",
        "|---" * (len(noises) + 2) + "|",
    ]
    for policy in config.train.policies:
        for p, a, b in pairs:
            if p != policy:
                continue
            cells = [
                agg[k].format(2) if (k := (protocol, p, a, n, f"rank:{b}")) in agg else "–" for n in noises
            ]
            names = f"{SALIENCY_ABBREVIATIONS[a]} vs {SALIENCY_ABBREVIATIONS[b]}"
            lines.append(f"| {policy} | {names} | " + " | ".join(cells) + " |")
    return lines + [""]


def _figures(config: StudyConfig, protocol: str) -> list[str]:
    """Per policy, the first training seed's maps and neuron map (if drawn)."""
    from drive.eval.attention_plots import safe_name

    lines: list[str] = []
    seed = config.train.seeds[0]
    for policy in config.train.policies:
        plots = eval_dir(config, EvalJob(protocol, policy, seed)) / "plots"
        found = [plots / f"{kind}_{safe_name(policy)}.png" for kind in ("attention", "neuron_map")]
        found = [f for f in found if f.is_file()]
        if found:
            lines += [f"*{policy}, training seed {seed}:*", ""]
            lines += [f"![{f.stem}]({f.relative_to(Path(config.out))})" for f in found] + [""]
    return lines
