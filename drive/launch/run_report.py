"""The launch's own report: what each stage did and took, with the evaluation report folded in."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from common.interrupts import check


def write_launch_report(launch: Any) -> Path:
    """Write `<out>/report.md` for a `drive.launch.runner.Launch` and return its path."""
    out: Path = launch.out
    cfg = launch.config
    state = launch.state
    lines = [f"# {cfg.name}", "", f"Launch file resolved in `launch.yaml`; outputs under `{out}`.", ""]

    lines += ["## Stages", "", "| stage | time | result |", "|---|---|---|"]
    for stage in cfg.stages:
        entry = state.get(stage, {})
        if not entry:
            continue
        seconds = entry.get("seconds_when_run") if entry.get("skipped") else entry.get("seconds")
        took = f"{seconds:.0f} s" if isinstance(seconds, (int, float)) else "–"
        note = "reused (done before)" if entry.get("skipped") else "ran"
        lines.append(f"| {stage} | {took} | {note} |")
    lines.append("")

    lines += _recordings_section(launch)
    lines += _training_section(launch)
    lines += _export_section(launch)
    lines += _onboard_section(launch)
    lines += _eval_section(launch)
    path = out / "report.md"
    check()  # the launch's last output: a Ctrl-C swallowed while it was assembled stops it here
    path.write_text("\n".join(lines) + "\n")
    return path


def _recordings_section(launch: Any) -> list[str]:
    if not launch.recordings.is_dir():
        return []
    from recordings.catalog import summarize

    s = summarize(launch.recordings)
    return [
        "## Recorded expert drives",
        "",
        f"{s.episodes} episodes, {s.frames} frames, {s.duration_s / 60:.1f} min, {s.distance_km:.2f} km; "
        f"tracks {', '.join(f'{k} ({v})' for k, v in s.tracks.items())}; conditions "
        f"{', '.join(f'{k} ({v})' for k, v in s.conditions.items())}. Labels (expert curvature): mean "
        f"{s.label_mean:.4f}, sd {s.label_std:.4f} 1/m.",
        "",
    ]


def _training_section(launch: Any) -> list[str]:
    rows = []
    for policy in launch.config.train.policies:
        metrics = launch.run_dir(policy) / "metrics.jsonl"
        if not metrics.is_file():
            continue
        records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        vals = [r for r in records if "val_loss" in r]
        if not vals:
            continue
        best = min(vals, key=lambda r: r["val_loss"])
        zero = best.get("val_zero_loss")
        ratio = f"{best['val_loss'] / zero:.3f}" if zero else "–"
        rows.append(
            f"| {policy} | {best['val_loss']:.4f} | {zero:.4f} | {ratio} | {best.get('step', '–')} |"
            if zero
            else f"| {policy} | {best['val_loss']:.4f} | – | – | {best.get('step', '–')} |"
        )
    if not rows:
        return []
    return [
        "## Training",
        "",
        "Validation loss (weighted squared error on held-out episodes) against predicting zero curvature.",
        "",
        "| policy | best val loss | zero predictor | ratio | step |",
        "|---|---|---|---|---|",
        *rows,
        "",
        *[
            f"![{p} loss curves](train/{p}/loss_curves.png)"
            for p in launch.config.train.policies
            if (launch.run_dir(p) / "loss_curves.png").is_file()
        ],
        "",
    ]


def _export_section(launch: Any) -> list[str]:
    entry = launch.state.get("export", {})
    if not launch.model.is_file():
        return []
    parity = entry.get("parity_max_abs_diff_1pm")
    text = f"`{launch.model.relative_to(launch.out)}` ({launch.config.export.policy})"
    if parity is not None:
        text += f"; PyTorch vs onnxruntime max |Δ curvature| {parity:.2e} 1/m over the parity drive"
    lines = ["## ONNX export", "", text + "."]
    for name, cost in entry.get("variants", {}).items():
        lines.append(
            f"`{launch.model_of(name).relative_to(launch.out)}` ({name}): max |Δ curvature| "
            f"{cost['max_abs_diff_1pm']:.2e} 1/m, rms {cost['rms_pct']:.2g} % of the curvature rms."
        )
    return [*lines, ""]


def _onboard_section(launch: Any) -> list[str]:
    path = launch.out / "onboard" / "metrics.json"
    if not path.is_file():
        return []
    drives = json.loads(path.read_text())
    if "metrics" in drives:  # written before the stage drove several precisions: one fp32 drive
        drives = {"fp32": {"model": str(launch.model), **drives}}
    lines = ["## Onboard runtime (onnxruntime, 1 thread)", ""]
    for precision, data in drives.items():
        m, d = data["metrics"], data["deadline"]
        lines += [
            f"- {precision} (`{Path(data['model']).name}`): {m['distance_m']:.0f} m in "
            f"{m['elapsed_s']:.0f} s, {m['interventions']} interventions "
            f"({m['interventions_per_km']:.2f} per km), autonomy {m['autonomy_pct']:.1f} %, "
            f"mean |offset| {m['mean_abs_offset_m']:.2f} m; latency p50 "
            f"{d['latency_p50_ms']:.2f} ms, p99 {d['latency_p99_ms']:.2f} ms, "
            f"{d['deadline_misses']} deadline misses."
        ]
    return [*lines, ""]


def _eval_section(launch: Any) -> list[str]:
    report = launch.out / "eval" / "report.md"
    if not report.is_file():
        return []
    text = report.read_text()
    # Demote its headings one level and make its relative links point into eval/.
    text = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", text, flags=re.M)
    text = re.sub(r"\]\((?!https?://|/)([^)]+)\)", lambda m: f"](eval/{m.group(1)})", text)
    return [text]
