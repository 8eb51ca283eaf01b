"""The deployment-fault part of an evaluation report: each policy under each deployment setting
(`EvalConfig.deploy`), pooled over conditions and noise levels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drive.eval.plan import EvalConfig


def aggregate_deploy(
    config: EvalConfig, episodes: list[dict[str, Any]], metrics: Sequence[str]
) -> dict[str, Any]:
    """Mean ± sd of `metrics` per policy and deployment setting, pooled over conditions and noise
    levels: {label: {deploy: {metric: stats}}} ({} with a single setting)."""
    from drive.eval.report import _figure, summary  # the report's own statistics (it imports this module)

    if len(config.deploy) < 2:
        return {}
    table: dict[str, Any] = {}
    for label in dict.fromkeys(e["label"] for e in episodes):
        table[label] = {}
        for deploy in config.deploy:
            rows = [e for e in episodes if e["label"] == label and e.get("deploy", "none") == deploy]
            table[label][deploy] = {name: summary(_figure(r, name) for r in rows) for name in metrics}
    return table


def deploy_section(config: EvalConfig, by_label: dict[str, Any]) -> list[str]:
    """Interventions per km per deployment setting (pooled over conditions and noise levels)."""
    from drive.eval.report import format_stat

    if not by_label:
        return []
    lines = [
        "",
        "## Deployment faults: interventions per km (mean ± sd over episodes)",
        "",
        "| policy | " + " | ".join(f"`{d}`" for d in config.deploy) + " |",
        "|---" * (len(config.deploy) + 1) + "|",
    ]
    for label, by_deploy in by_label.items():
        cells = [format_stat(by_deploy[d]["interventions_per_km"], "{:.2f}") for d in config.deploy]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines
