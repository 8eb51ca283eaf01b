"""A study's deployment-fault table (issue 17): each policy's interventions per km under each deployment
setting of `eval.deploy`, and, for every faulty setting run both ways, the paired effect of telling the
policy the measured elapsed time (`elapsed=true`) instead of stepping it one period (`elapsed=period`).

The unit of replication is the training seed, as in `drive.study.stats`: each model's value is its mean
over the evaluation episodes (pooled over noise levels and conditions), a policy's figure the mean over
its training seeds with a 95 % bootstrap interval. The told-vs-period effect is paired: both settings
drive the same model on the same episodes with the same lost frames and step lengths, so it is the mean
of the per-seed differences, with the bootstrap interval of that mean.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from drive.closed_loop.deployment import DeploymentConfig
from drive.study.stats import Interval, mean_interval
from drive.study.study_plan import StudyConfig


def deploy_levels(config: StudyConfig) -> list[str]:
    """The study's deployment settings as canonical labels (["none"] when it has none)."""
    return [DeploymentConfig.parse(d).label for d in config.eval.get("deploy", ["none"])]


def elapsed_pairs(levels: list[str]) -> list[tuple[str, str]]:
    """(told label, stepped-one-period label) for each setting present both ways."""
    pairs = []
    for label in levels:
        told = DeploymentConfig.parse(label)
        if told.elapsed != "true" or not told.active:
            continue
        period = dataclasses.replace(told, elapsed="period").label
        if period in levels:
            pairs.append((label, period))
    return pairs


def per_seed(
    rows: list[dict[str, Any]], protocol: str, policy: str, deploy: str, metric: str
) -> dict[int, float]:
    """Training seed -> the metric's mean over that model's episodes in setting `deploy`."""
    by_seed: dict[int, list[float]] = {}
    for r in rows:
        if r["protocol"] == protocol and r["policy"] == policy and r.get("deploy", "none") == deploy:
            value = r[metric]
            if value is not None and np.isfinite(value):
                by_seed.setdefault(int(r["train_seed"]), []).append(float(value))
    return {seed: float(np.mean(v)) for seed, v in sorted(by_seed.items())}


def deploy_tables(
    config: StudyConfig, rows: list[dict[str, Any]], metric: str = "interventions_per_km"
) -> dict[str, Any]:
    """{protocol: {"levels": {policy: {deploy: Interval}}, "elapsed_effect": {policy: {told: Interval}},
    "elapsed_seed_effect": {policy: {told: {training seed: told − period}}}}} ({} for a study with a single
    setting). The effect is told − period, paired by training seed."""
    levels = deploy_levels(config)
    if len(levels) < 2:
        return {}
    out: dict[str, Any] = {}
    for protocol in config.protocols:
        name = protocol.name
        table: dict[str, dict[str, Interval]] = {}
        effect: dict[str, dict[str, Interval]] = {}
        seed_effect: dict[str, dict[str, dict[int, float]]] = {}
        for policy in config.train.policies:
            values = {d: per_seed(rows, name, policy, d, metric) for d in levels}
            table[policy] = {d: mean_interval(list(v.values())) for d, v in values.items()}
            effect[policy], seed_effect[policy] = {}, {}
            for told, period in elapsed_pairs(levels):
                seeds = sorted(set(values[told]) & set(values[period]))
                diffs = {s: values[told][s] - values[period][s] for s in seeds}
                effect[policy][told] = mean_interval(list(diffs.values()))
                seed_effect[policy][told] = diffs
        out[name] = {"levels": table, "elapsed_effect": effect, "elapsed_seed_effect": seed_effect}
    return out


def deploy_section(config: StudyConfig, tables: dict[str, Any]) -> list[str]:
    """The markdown section of `deploy_tables`: one table per protocol, the effect, and a reading."""
    if not tables:
        return []
    levels = deploy_levels(config)
    pairs = elapsed_pairs(levels)
    lines = [
        "## Deployment faults: interventions per km",
        "",
        "Each setting (drive.closed_loop.deployment) drives every model on the same episodes with the same "
        "lost frames and step lengths. Mean over training seeds [95 % bootstrap interval].",
        "",
    ]
    for protocol, t in tables.items():
        lines += [
            f"**{protocol}**",
            "",
            "| policy | " + " | ".join(f"`{d}`" for d in levels) + " |",
            "|---" * (len(levels) + 1) + "|",
        ]
        for policy, by_level in t["levels"].items():
            lines.append(f"| {policy} | " + " | ".join(by_level[d].format(2) for d in levels) + " |")
        if pairs:
            lines += [
                "",
                "Effect of telling the policy the elapsed time (told − stepped one period, paired by "
                "training seed; negative: fewer interventions when told; * : the interval excludes 0; in "
                "brackets each training seed's difference: a tie in counts shows as ±0.000x, the per-km "
                "figures dividing by slightly different distances):",
                "",
                "| policy | " + " | ".join(f"`{told}`" for told, _ in pairs) + " |",
                "|---" * (len(pairs) + 1) + "|",
            ]
            for policy, by_told in t["elapsed_effect"].items():
                per_seed_diff = t["elapsed_seed_effect"][policy]
                cells = [
                    by_told[told].format(2)
                    + (" *" if by_told[told].resolved else "")
                    + " ("
                    + " / ".join(f"{d:+.4f}" for d in per_seed_diff[told].values())
                    + ")"
                    for told, _ in pairs
                ]
                lines.append(f"| {policy} | " + " | ".join(cells) + " |")
            lines += ["", elapsed_reading(t["elapsed_effect"], pairs)]
        lines.append("")
    return lines


def elapsed_reading(effect: dict[str, dict[str, Interval]], pairs: list[tuple[str, str]]) -> str:
    """One sentence on the told − stepped effects: which are resolved at 95 %, in which direction."""
    resolved, open_, same = [], [], []
    for policy, by_told in effect.items():
        for told, _ in pairs:
            interval = by_told[told]
            if interval.resolved:
                direction = "fewer" if interval.high < 0 else "more"
                resolved.append(f"{policy} at `{told}` ({direction} interventions when told)")
            elif interval.low == interval.high == 0.0:
                same.append(f"{policy} at `{told}`")
            elif not np.isnan(interval.mean):
                open_.append(f"{policy} at `{told}`")
    parts = []
    if same:
        parts.append("No difference on any training seed: " + ", ".join(same) + ".")
    if resolved:
        parts.append("Resolved at 95 %: " + "; ".join(resolved) + ".")
    if open_:
        parts.append(
            "Not resolved (the interval includes 0, the sign is not known with these seeds): "
            + ", ".join(open_)
            + "."
        )
    return "Reading: " + (" ".join(parts) if parts else "no paired effect could be computed.")
