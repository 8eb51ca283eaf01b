"""The study's report, rebuilt from its files every time: study.json (aggregates with intervals),
episodes.csv / episodes.parquet (every episode), plots/ and report.md, with the findings in words that
claim no more than the intervals allow.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from drive.executor.tasks import Outcome, format_duration
from drive.study.attention_tables import attention_aggregate, attention_json, attention_section
from drive.study.deploy_table import deploy_section, deploy_tables
from drive.study.jobs import eval_dir, job_wall_s, train_dir
from drive.study.stats import CONFIDENCE, Interval
from drive.study.study_plan import EvalJob, StudyConfig, TrainJob, plan_jobs
from drive.study.tables import (
    aggregate,
    differences,
    episode_rows,
    intervals_to_json,
    seed_table,
    write_episode_tables,
)

PLATEAU_RATIO = 0.5
"""A run whose best validation ratio stays above this never left the zero predictor's plateau."""


def write_study_report(
    config: StudyConfig, outcome: Outcome | None = None, wall_s: float | None = None
) -> dict[str, Any]:
    """Write study.json, episodes.csv/.parquet, plots/ and report.md into `config.out`; returns study.json."""
    from drive.study.study_plots import write_study_plots

    out = Path(config.out)
    rows = episode_rows(config)
    agg, diffs, seeds = aggregate(config, rows), differences(config, rows), seed_table(config)
    deploy = deploy_tables(config, rows)
    write_episode_tables(rows, out)
    figures = write_study_plots(config, agg, out / "plots")
    attention = attention_aggregate(config)
    compute_s = {k: job_wall_s(_job_dir(config, k)) for k in (j.key for j in plan_jobs(config))}
    summary = {
        "name": config.name,
        "reference": config.reference_policy,
        "aggregate": intervals_to_json(agg),
        "differences_interventions_per_km": intervals_to_json(diffs),
        "training": intervals_to_json(seeds),
        **({"deploy_interventions_per_km": intervals_to_json(deploy)} if deploy else {}),
        "failures": dict(outcome.failures) if outcome else {},
        "blocked": dict(outcome.blocked) if outcome else {},
        "compute_s": {
            "train": _sum(v for k, v in compute_s.items() if k.startswith("train/")),
            "eval": _sum(v for k, v in compute_s.items() if k.startswith("eval/")),
        },
        "wall_s_this_run": wall_s,
        "episodes": len(rows),
        "figures": [str(f.relative_to(out)) for f in figures],
        "attention": attention_json(attention),
    }
    (out / "study.json").write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    sections = attention_section(config, attention) + deploy_section(config, deploy)
    (out / "report.md").write_text(render_markdown(config, agg, diffs, seeds, summary, sections))
    return summary


def render_markdown(
    config: StudyConfig,
    agg: dict[str, Any],
    diffs: dict[str, Any],
    seeds: dict[str, Any],
    summary: dict[str, Any],
    extra_sections: list[str] | None = None,
) -> str:
    """report.md: set-up, training seeds, per protocol the tables with intervals and the reading, then the
    `extra_sections` lines (attention: `drive.study.attention_tables`, deployment faults:
    `drive.study.deploy_table`) when given."""
    ev = config.eval
    lines = [
        f"# Study: {config.name}",
        "",
        f"{len(config.train.policies)} policies ({', '.join(config.train.policies)}) × "
        f"{len(config.train.seeds)} training seeds ({', '.join(map(str, config.train.seeds))}); every model "
        f"drives the same episodes: conditions {ev.get('conditions', ['summer'])}, evaluation seeds "
        f"{ev.get('seeds', [0, 1, 2])}, noise σ² {ev.get('noise', [0.0, 0.1, 0.2, 0.3])} in the "
        f"`{ev.get('noise_space', 'pixel')}` space, laps {ev.get('laps', 2)}. Figures are means over "
        f"training seeds with {CONFIDENCE:.0%} bootstrap intervals (each seed's value is its mean over the "
        "episodes). With 3–5 seeds an interval is rough: it cannot reach beyond the seeds' own range.",
        "",
        f"Compute: training {format_duration(summary['compute_s']['train'] or 0)}, evaluation "
        f"{format_duration(summary['compute_s']['eval'] or 0)} (worker-time of the finished jobs); this run "
        f"{format_duration(summary['wall_s_this_run'] or 0)} wall-clock on {config.workers} worker(s).",
        "",
    ]
    if summary["failures"] or summary["blocked"]:
        lines += ["## Jobs that did not finish", ""]
        lines += [f"- `{k}`: {v}" for k, v in {**summary["failures"], **summary["blocked"]}.items()]
        lines.append("")
    lines += _training_section(config, seeds)
    for protocol in config.protocols:
        lines += _protocol_section(config, protocol.name, protocol.kind, protocol.track, agg, diffs)
    lines += extra_sections or []
    lines += [
        "## Files",
        "",
        "`episodes.csv` / `episodes.parquet`: every episode's metrics "
        "(`pandas.read_parquet`); `study.json`: the aggregates; per model: `<protocol>/eval/<policy>/"
        "seed-<n>/report.md`.",
        "",
    ]
    lines += [f"![{f}]({f})" for f in summary["figures"]]
    return "\n".join(lines) + "\n"


def _training_section(config: StudyConfig, seeds: dict[str, Any]) -> list[str]:
    lines = [
        "## Training: best validation ratio per seed",
        "",
        "Validation loss over the zero predictor's (lower is better; ≥ "
        f"{PLATEAU_RATIO} means the run stayed on the plateau of predicting ~0).",
        "",
    ]
    for protocol in config.protocols:
        lines += [
            f"**{protocol.name}**",
            "",
            "| policy | " + " | ".join(f"seed {s}" for s in config.train.seeds) + " | median |",
            "|---|" + "---|" * (len(config.train.seeds) + 1),
        ]
        for policy in config.train.policies:
            best = [seeds[protocol.name][policy][s].get("best_val_ratio") for s in config.train.seeds]
            cells = [
                f"{v:.3f}" + (" (plateau)" if v >= PLATEAU_RATIO else "") if v is not None else "–"
                for v in best
            ]
            done = [v for v in best if v is not None]
            median = f"{statistics.median(done):.3f}" if done else "–"
            lines.append(f"| {policy} | " + " | ".join(cells) + f" | {median} |")
        lines.append("")
    return lines


def _protocol_section(
    config: StudyConfig, name: str, kind: str, track: str, agg: dict[str, Any], diffs: dict[str, Any]
) -> list[str]:
    table = agg[name]
    noises = sorted({n for p in table.values() for n in p})
    lines = [f"## Protocol `{name}` ({kind}): evaluated on `{track}`", ""]
    for metric, title, digits in (
        ("interventions_per_km", "Interventions per km", 2),
        ("autonomy_pct", "PilotNet autonomy, %", 1),
        ("mean_abs_offset_m", "Mean |lateral offset|, m", 3),
        ("rms_curvature_rate_1pm_per_s", "RMS curvature rate (smoothness), 1/m/s", 3),
        ("ssim", "Saliency SSIM, clean vs noisy", 2),
        ("pc1_explained", "PC1 share of the neurons' activity", 2),
    ):
        if all(math.isnan(table[p][n][metric].mean) for p in table for n in noises):
            continue
        lines += [
            f"**{title}**",
            "",
            "| policy | " + " | ".join(f"σ² = {n:g}" for n in noises) + " |",
            "|---|" + "---|" * len(noises),
        ]
        lines += [
            f"| {p} | " + " | ".join(table[p][n][metric].format(digits) for n in noises) + " |" for p in table
        ]
        lines.append("")
    lines += _differences_section(config, diffs[name], noises)
    return lines


def _differences_section(
    config: StudyConfig, diffs: dict[str, dict[float, Interval]], noises: list[float]
) -> list[str]:
    ref = config.reference_policy
    lines = [
        f"**Interventions per km, other policy − {ref}** (negative: fewer than {ref})",
        "",
        "| policy | " + " | ".join(f"σ² = {n:g}" for n in noises) + " |",
        "|---|" + "---|" * len(noises),
    ]
    lines += [
        f"| {p} | " + " | ".join(d[n].format(2) + (" *" if d[n].resolved else "") for n in noises) + " |"
        for p, d in diffs.items()
    ]
    lines += [
        "",
        "`*`: the interval excludes 0 (the sign of the difference is resolved at 95 %).",
        "",
        "Reading: " + reading(ref, diffs, noises),
        "",
    ]
    return lines


def reading(reference: str, diffs: dict[str, dict[float, Interval]], noises: list[float]) -> str:
    """The differences in words: which are resolved (and which way), which are not, and the levels where
    every model of every policy drove exactly alike (no difference to speak of)."""
    resolved, unresolved = [], []
    alike = [n for n in noises if all(_exactly_zero(by_noise[n]) for by_noise in diffs.values())]
    for policy, by_noise in diffs.items():
        for noise in noises:
            d = by_noise[noise]
            if math.isnan(d.mean) or noise in alike:
                continue
            if d.resolved:
                way = "fewer" if d.mean < 0 else "more"
                resolved.append(
                    f"{policy} needed {way} interventions per km than {reference} at σ² = {noise:g} "
                    f"({d.format(2)})"
                )
            else:
                unresolved.append(f"{policy} at σ² = {noise:g}")
    text = ""
    if alike:
        levels = ", ".join(f"{n:g}" for n in alike)
        text += f"At σ² = {levels} every model drove alike (difference 0 for every seed). "
    if not resolved:
        return text + (
            f"No difference from {reference} is resolved at 95 % with these seeds: every interval includes "
            "0, so this study cannot say which policy needs fewer interventions."
        )
    text += "; ".join(resolved) + "."
    if unresolved:
        text += " Not resolved (the interval includes 0): " + ", ".join(unresolved) + "."
    return text


def _exactly_zero(d: Interval) -> bool:
    return d.mean == 0.0 and d.low == 0.0 and d.high == 0.0


def _job_dir(config: StudyConfig, key: str) -> Path:
    kind, protocol, policy, seed = key.split("/")
    seed_n = int(seed.removeprefix("seed-"))
    if kind == "train":
        return train_dir(config, TrainJob(protocol, policy, seed_n))
    return eval_dir(config, EvalJob(protocol, policy, seed_n))


def _sum(values: Iterable[float | None]) -> float | None:
    done = [v for v in values if v is not None]
    return float(sum(done)) if done else None
