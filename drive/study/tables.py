"""A study's numbers, read back from its files: one row per evaluated episode, the per-seed values, and
the aggregates with intervals (the unit of replication is the training seed, see `stats`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from drive.study.jobs import eval_dir, train_dir, training_summary
from drive.study.stats import Interval, difference_interval, mean_interval
from drive.study.study_plan import EvalJob, StudyConfig

METRICS = (
    "interventions_per_km",
    "interventions",
    "autonomy_pct",
    "mean_abs_offset_m",
    "rms_curvature_rate_1pm_per_s",
    "ssim",
    "pc1_explained",
)
"""Per-episode figures the study aggregates (SSIM only exists for noisy episodes with saliency)."""

EPISODE_COLUMNS = (
    "protocol",
    "policy",
    "train_seed",
    "eval_seed",
    "condition",
    "noise_variance",
    "noise_space",
    "deploy",
    *METRICS,
    "distance_m",
    "elapsed_s",
    "frames",
)
"""Columns of episodes.csv / episodes.parquet, one row per evaluated episode."""


def evaluated_episodes(config: StudyConfig) -> Iterator[tuple[str, str, int, dict[str, Any]]]:
    """(protocol, policy, training seed, the episode's entry in metrics.json) of every finished eval job,
    in plan order."""
    for protocol in config.protocols:
        for seed in config.train.seeds:
            for policy in config.train.policies:
                path = eval_dir(config, EvalJob(protocol.name, policy, seed)) / "metrics.json"
                if path.is_file():
                    for episode in json.loads(path.read_text())["episodes"]:
                        yield protocol.name, policy, seed, episode


def episode_rows(config: StudyConfig) -> list[dict[str, Any]]:
    """Every evaluated episode of every finished eval job, in plan order."""
    rows = []
    space = str(config.eval.get("noise_space", "pixel"))
    for protocol, policy, seed, episode in evaluated_episodes(config):
        metrics = episode["metrics"]
        rows.append(
            {
                "protocol": protocol,
                "policy": policy,
                "train_seed": seed,
                "eval_seed": int(episode["seed"]),
                "condition": episode["condition"],
                "noise_variance": float(episode["noise_variance"]),
                "noise_space": space,
                "deploy": str(episode.get("deploy", "none")),
                **{m: _number(metrics.get(m, episode.get(m))) for m in METRICS},
                "distance_m": _number(metrics.get("distance_m")),
                "elapsed_s": _number(metrics.get("elapsed_s")),
                "frames": int(metrics.get("frames", 0)),
            }
        )
    return rows


def seed_values(
    rows: Iterable[dict[str, Any]],
    protocol: str,
    policy: str,
    noise: float,
    metric: str,
    deploy: str | None = None,
) -> dict[int, float]:
    """Training seed -> the metric averaged over that model's episodes at `noise` (NaN-free means), in
    the deployment setting `deploy` (None: the first one of the rows, "none" in a study without faults;
    `drive.study.deploy_table` compares the settings)."""
    rows = list(rows)
    if deploy is None:
        deploy = rows[0].get("deploy", "none") if rows else "none"
    by_seed: dict[int, list[float]] = {}
    for r in rows:
        if (
            r["protocol"] == protocol
            and r["policy"] == policy
            and r["noise_variance"] == noise
            and r.get("deploy", "none") == deploy
        ):
            value = r[metric]
            if value is not None and np.isfinite(value):
                by_seed.setdefault(int(r["train_seed"]), []).append(float(value))
    return {seed: float(np.mean(values)) for seed, values in sorted(by_seed.items())}


def aggregate(config: StudyConfig, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """{protocol: {policy: {noise: {metric: Interval}}}} over training seeds."""
    noises = _noise_levels(rows)
    table: dict[str, Any] = {}
    for protocol in config.protocols:
        table[protocol.name] = {
            policy: {
                noise: {
                    metric: mean_interval(
                        list(seed_values(rows, protocol.name, policy, noise, metric).values())
                    )
                    for metric in METRICS
                }
                for noise in noises
            }
            for policy in config.train.policies
        }
    return table


def differences(
    config: StudyConfig, rows: list[dict[str, Any]], metric: str = "interventions_per_km"
) -> dict[str, Any]:
    """{protocol: {other policy: {noise: Interval of mean(other) − mean(reference)}}}."""
    reference = config.reference_policy
    noises = _noise_levels(rows)
    table: dict[str, Any] = {}
    for protocol in config.protocols:
        ref = {n: list(seed_values(rows, protocol.name, reference, n, metric).values()) for n in noises}
        table[protocol.name] = {
            policy: {
                noise: difference_interval(
                    list(seed_values(rows, protocol.name, policy, noise, metric).values()), ref[noise]
                )
                for noise in noises
            }
            for policy in config.train.policies
            if policy != reference
        }
    return table


def seed_table(config: StudyConfig) -> dict[str, dict[str, dict[int, dict[str, Any]]]]:
    """{protocol: {policy: {seed: training summary (best/last validation ratio)}}} of finished runs."""
    from drive.study.study_plan import TrainJob

    return {
        protocol.name: {
            policy: {
                seed: training_summary(train_dir(config, TrainJob(protocol.name, policy, seed)))
                for seed in config.train.seeds
            }
            for policy in config.train.policies
        }
        for protocol in config.protocols
    }


def intervals_to_json(value: Any) -> Any:
    """Nested dicts of Intervals -> plain JSON (noise keys as `0.1` strings)."""
    if isinstance(value, Interval):
        return value.to_dict()
    if isinstance(value, dict):
        return {
            (f"{k:g}" if isinstance(k, float) else str(k)): intervals_to_json(v) for k, v in value.items()
        }
    return value


def write_episode_tables(rows: list[dict[str, Any]], out: Path) -> list[Path]:
    """episodes.csv and episodes.parquet (pandas/pyarrow-readable), one row per episode."""
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    csv_path, parquet_path = out / "episodes.csv", out / "episodes.parquet"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(EPISODE_COLUMNS))
        writer.writeheader()
        writer.writerows({k: ("" if r[k] is None else r[k]) for k in EPISODE_COLUMNS} for r in rows)
    columns = {k: [r[k] for r in rows] for k in EPISODE_COLUMNS}
    pq.write_table(pa.table(columns), parquet_path)
    return [csv_path, parquet_path]


def _noise_levels(rows: Iterable[dict[str, Any]]) -> list[float]:
    return sorted({float(r["noise_variance"]) for r in rows})


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None
