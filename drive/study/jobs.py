"""The jobs of a study, each a pure function of (study config, job) that writes files into the study's
output folder, so any executor (this process, a process pool) gives the same results.

    <out>/<protocol>/record/                      the protocol's recordings (when the study records them)
    <out>/<protocol>/train/<policy>/seed-<n>/     a `drive train` run (checkpoints, metrics.jsonl) + DONE
    <out>/<protocol>/eval/<policy>/seed-<n>/      a `drive eval` of that model (metrics.json, report) + DONE

A job is done when its DONE file holds the digest of the config it would run now: then it is skipped.
A DONE file with another digest means the study file changed since: the job refuses (naming the job and
the way out), never reports results of a config it did not run. A training interrupted half-way resumes
from its last checkpoint (after checking the checkpoint was made with the same config).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drive.study.study_plan import EvalJob, StudyConfig, TrainJob

if TYPE_CHECKING:  # imported where used: planning a study loads neither torch nor the simulators
    from drive.eval.plan import EvalConfig
    from drive.training.train_config import TrainConfig

DONE = "DONE"


class StaleJobError(ValueError):
    """A finished job's outputs were made with another config than the study file asks for now."""


@dataclass(frozen=True)
class JobResult:
    """What a job reports back (small: the files hold the rest).

    Attributes:
        key: the job's key.
        skipped: it was already done.
        summary: a few figures (training: best validation ratio; eval: episodes).
    """

    key: str
    skipped: bool
    summary: dict[str, Any]


def protocol_data(config: StudyConfig, protocol: str) -> Path:
    """The recordings folder a protocol trains on."""
    p = config.protocol(protocol)
    return Path(p.data) if p.data is not None else Path(config.out) / protocol / "record"


def train_dir(config: StudyConfig, job: TrainJob | EvalJob) -> Path:
    return Path(config.out) / job.protocol / "train" / job.policy / f"seed-{job.seed}"


def eval_dir(config: StudyConfig, job: EvalJob) -> Path:
    return Path(config.out) / job.protocol / "eval" / job.policy / f"seed-{job.seed}"


def train_config(config: StudyConfig, job: TrainJob) -> TrainConfig:
    """The resolved `TrainConfig` of a train job (study overrides, then per-policy ones, then the seed)."""
    from drive.training.run import resolve_config

    overrides = [
        f"policy.name={job.policy}",
        *config.train.overrides,
        *config.train.per_policy.get(job.policy, []),
        f"seed={job.seed}",
        "progress=false",  # one bar for the whole study, not one per worker
        f"threads={_train_threads(config)}",
    ]
    return resolve_config(config.train.config, protocol_data(config, job.protocol), overrides)


def eval_config(config: StudyConfig, job: EvalJob) -> EvalConfig:
    """The `EvalConfig` of an eval job: the study's eval settings on the protocol's track, one worker."""
    from common.strict_config import from_dict
    from drive.eval.plan import EvalConfig

    checkpoint = train_dir(config, job) / "checkpoints" / "best.pt"
    data = {
        **config.eval,
        "policies": [str(checkpoint)],
        "track": config.protocol(job.protocol).track,
        "workers": 1,
    }
    return from_dict(EvalConfig, data, prefix="eval.")


def run_train_job(config: StudyConfig, job: TrainJob) -> JobResult:
    """Train one model (resuming an interrupted run); skip when done with the same config."""
    from drive.training.run import run_training
    from drive.training.trainer import CHECKPOINT_DIR, LAST

    cfg = train_config(config, job)
    out = train_dir(config, job)
    if _is_done(out, train_digest(cfg), job.key):
        return JobResult(job.key, True, training_summary(out))
    # An interrupted run resumes; the trainer refuses a checkpoint made with another config.
    resume = (out / CHECKPOINT_DIR / LAST).is_file()
    started = time.perf_counter()
    run_training(cfg, out, resume=resume)
    _mark_done(out, train_digest(cfg), time.perf_counter() - started)
    return JobResult(job.key, False, training_summary(out))


def _train_threads(config: StudyConfig) -> int:
    """Torch threads of a training job: locally workers × threads = the cores; on a cluster the CPUs the
    job reserved. (Thread counts change float rounding, so only runs with equal counts match bit for bit:
    `--workers 2` on 2 cores and Ray with 1 CPU per job do.)"""
    if config.executor.kind == "ray":
        return max(1, int(config.executor.cpus_per_job))
    return max(1, (os.cpu_count() or 1) // config.workers)


def train_digest(cfg: Any) -> str:
    """Digest of what a training computes: its resolved config without the keys that only say where and
    how fast it runs (threads, progress, ...), so a rerun with other `--workers` still finds it done."""
    from common.strict_config import to_dict
    from drive.training.train_config import RESUME_FREE_KEYS

    flat = _flatten(to_dict(cfg))
    kept = {k: v for k, v in flat.items() if k not in RESUME_FREE_KEYS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def run_eval_job(config: StudyConfig, job: EvalJob) -> JobResult:
    """Evaluate one trained model closed loop; skip when done with the same config."""
    from common.strict_config import digest
    from drive.eval.evaluate import evaluate

    cfg = eval_config(config, job)
    out = eval_dir(config, job)
    if _is_done(out, digest(cfg), job.key):
        return JobResult(job.key, True, {})
    if (out / "metrics.json").exists():
        (out / "metrics.json").unlink()  # an interrupted evaluation: its report is redone whole
    started = time.perf_counter()
    result = evaluate(cfg, out, progress=False)
    _mark_done(out, digest(cfg), time.perf_counter() - started)
    return JobResult(job.key, False, {"episodes": len(result["episodes"])})


def run_job(config: StudyConfig, job: TrainJob | EvalJob) -> JobResult:
    """Run any job of the plan (a picklable entry point for worker processes)."""
    if isinstance(job, TrainJob):
        return run_train_job(config, job)
    return run_eval_job(config, job)


def training_summary(run_dir: Path) -> dict[str, Any]:
    """Best and last validation ratio (validation loss over the zero predictor's) and epochs of a run."""
    from drive.training.train_metrics import METRICS_FILE, read_metrics

    path = run_dir / METRICS_FILE
    if not path.is_file():
        return {}
    vals = [r for r in read_metrics(path) if r.get("kind") == "val" and r.get("val_ratio") is not None]
    if not vals:
        return {}
    return {
        "best_val_ratio": min(float(r["val_ratio"]) for r in vals),
        "last_val_ratio": float(vals[-1]["val_ratio"]),
        "val_ratios": [float(r["val_ratio"]) for r in vals],
    }


def _is_done(out: Path, digest: str, key: str) -> bool:
    marker = out / DONE
    if not marker.is_file():
        return False
    made_with = json.loads(marker.read_text()).get("config_digest")
    if made_with != digest:
        raise StaleJobError(
            f"{key}: {out} was made with another config (digest {made_with}, now {digest}); the study file "
            f"changed since. Remove {out} to redo it, or use another study `out`"
        )
    return True


def _mark_done(out: Path, digest: str, wall_s: float) -> None:
    """Write DONE atomically: the config digest and the wall time of the run that finished the job
    (a resumed training: of its last part)."""
    tmp = out / (DONE + ".tmp")
    tmp.write_text(json.dumps({"config_digest": digest, "wall_s": round(wall_s, 1)}) + "\n")
    tmp.replace(out / DONE)


def job_wall_s(out: Path) -> float | None:
    """The wall time a finished job took (from its DONE file), s; None if not finished."""
    marker = out / DONE
    return float(json.loads(marker.read_text()).get("wall_s", 0.0)) if marker.is_file() else None
