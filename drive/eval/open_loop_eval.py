"""Run an open-loop evaluation end to end: find the data, run the plan with a progress bar, write the
report folder (eval.yaml, metrics.json, report.md, plots/, videos/).

Figures (matplotlib, Agg, no global pyplot state):
- `error_vs_noise.png`: curvature MAE and steering whiteness against σ², mean ± sd over noise seeds;
- `curvature_<policy>.png`: the policy's curvature against the label over the first episode, clean and
  at the highest noise level.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from common.interrupts import check
from drive.eval.open_loop import OpenLoopConfig, OpenLoopOutcome, find_data, plan_runs, run_open_loop
from drive.eval.report import noise_key

TRACE_SECONDS = 60.0
"""Length of the curvature-trace figure, s."""


def evaluate_open_loop(
    config: OpenLoopConfig, out_dir: str | Path, *, progress: bool = True
) -> dict[str, Any]:
    """Run every (policy, episode, σ², seed) of `config` and write the report into `out_dir`.

    Returns:
        The content of metrics.json.
    """
    from tqdm import tqdm

    from common.strict_config import save_config
    from drive.eval.open_loop_report import analyse, write_report
    from drive.eval.plan import policy_labels
    from policies.checkpoint import read_checkpoint
    from recordings.reader import Recording

    episodes = find_data(config)
    # Labels as the closed loop makes them (registry name, file stem where two share one); reading every
    # checkpoint here validates it before any run.
    names = [str(read_checkpoint(p)["policy_config"]["name"]) for p in config.policies]
    labels = policy_labels(config.policies, names)
    runs = plan_runs(config, labels, episodes)
    lengths = {str(e): Recording(e).num_frames for e in episodes}
    if config.max_frames is not None:
        lengths = {e: min(n, config.max_frames) for e, n in lengths.items()}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "eval.yaml")
    outcomes: list[OpenLoopOutcome] = []
    total = sum(lengths[r.episode] for r in runs)
    interval = 0.1 if sys.stderr.isatty() else 10.0
    with tqdm(total=total, unit="frame", disable=not progress, desc="open-loop", mininterval=interval) as bar:
        for run in runs:
            outcomes.append(run_open_loop(config, run, out, on_step=lambda _s: bar.update(1)))
            bar.update(1)  # the first frame (run_episode reports steps after it)
            bar.set_postfix_str(f"{len(outcomes)}/{len(runs)} runs", refresh=False)
    analysis = analyse(config, outcomes)
    figures = write_plots(config, outcomes, analysis, out / "plots")
    check()  # a Ctrl-C swallowed since the last run stops it before metrics.json says it is complete
    return write_report(config, analysis, out, figures=[str(f.relative_to(out)) for f in figures])


def write_plots(
    config: OpenLoopConfig, outcomes: list[OpenLoopOutcome], analysis: dict[str, Any], out_dir: Path
) -> list[Path]:
    """Draw the figures into `out_dir`; returns the written paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [plot_error_vs_noise(config, analysis, out_dir / "error_vs_noise.png")]
    for label in dict.fromkeys(o.run.label for o in outcomes):
        mine = [
            o
            for o in outcomes
            if o.run.label == label and o.run.episode_index == 0 and o.run.seed == config.seeds[0]
        ]
        shown = [o for o in mine if o.run.noise_variance in (min(config.noise), max(config.noise))]
        paths.append(plot_curvature_trace(shown, out_dir / f"curvature_{_safe(label)}.png"))
    return paths


def plot_error_vs_noise(config: OpenLoopConfig, analysis: dict[str, Any], path: Path) -> Path:
    """MAE (left) and whiteness (right) against σ², one line per policy, mean ± sd over noise seeds."""
    fig = Figure(figsize=(8.4, 3.4), layout="constrained")
    axes = fig.subplots(1, 2)
    metrics = (("mae_1pm", "curvature MAE, 1/m"), ("whiteness_1pm_per_s", "whiteness, 1/m/s"))
    for ax, (metric, ylabel) in zip(axes, metrics):
        for label, by_noise in analysis["aggregate"].items():
            stats = [by_noise[noise_key(n)][metric] for n in config.noise]
            mean = [s["mean"] if s["mean"] is not None else np.nan for s in stats]
            sd = [s["sd"] if s["sd"] is not None else 0.0 for s in stats]
            ax.errorbar(config.noise, mean, yerr=sd, marker="o", capsize=3, label=label)
        ax.set_xlabel("noise variance σ²")
        ax.set_ylabel(ylabel)
        ax.set_xticks(config.noise)
        ax.grid(alpha=0.3)
    label_white = analysis["label_whiteness_1pm_per_s"]
    if label_white is not None and np.isfinite(label_white):
        axes[1].axhline(label_white, color="green", ls="--", lw=1, label="label")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    fig.savefig(path, dpi=110)
    return path


def plot_curvature_trace(outcomes: list[OpenLoopOutcome], path: Path, seconds: float = TRACE_SECONDS) -> Path:
    """The label and each outcome's curvature over the first `seconds` of one episode."""
    fig = Figure(figsize=(9.0, 3.2), layout="constrained")
    ax = fig.subplots()
    if outcomes:
        tel = outcomes[0].telemetry
        t = tel["timestamp_s"]
        keep = t <= t[0] + seconds
        ax.plot(t[keep], tel["expert_curvature_1pm"][keep], color="green", lw=1.5, label="label")
        for o in outcomes:
            ax.plot(
                t[keep],
                o.telemetry["policy_curvature_1pm"][keep],
                lw=1,
                label=f"σ² = {o.run.noise_variance:g}",
            )
        ax.set_title(f"{outcomes[0].run.label} on {Path(outcomes[0].run.episode).name}")
    ax.set_xlabel("time, s")
    ax.set_ylabel("curvature, 1/m")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    return path


def _safe(label: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label)
