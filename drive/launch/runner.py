"""`drive launch FILE.yaml`: a whole run named in one file — record → train → eval → export → onboard
→ report.

Paths in a launch file (`out`, `train.config`, .xodr tracks) are relative to the launch file's folder, so
`drive launch /abs/path/demo.yaml` runs the same from any directory (`launch/demo.yaml` says
`out: ../out/demo` and `config: train_default.yaml`); `--out` on the command line is relative to the
working directory.

Each stage writes into `<out>/<stage>` and is skipped when its outputs exist (`--force` redoes it). An
interrupted run picks up where it stopped: complete episodes are kept (the one in flight is re-recorded),
training resumes from its last checkpoint, and finished stages are not repeated. Stage times are kept in
`<out>/launch_state.json` and summarised in `<out>/report.md`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.interrupts import check
from drive.closed_loop.record import RecordConfig
from drive.executor.config import ExecutorConfig

if TYPE_CHECKING:  # the eval plan is imported when the eval stage runs
    from drive.eval.plan import EvalConfig

STAGES = ("record", "train", "eval", "export", "onboard", "report")

DEFAULT_TRAIN_CONFIG = str(Path(__file__).resolve().parents[2] / "launch" / "train_default.yaml")
"""`train.config` when a launch file names none: the repository's laptop-sized training config."""


@dataclass(frozen=True)
class TrainStage:
    """Training of several policies on the recorded drives.

    Attributes:
        config: base training YAML (`drive train --config`), relative to the launch file's folder.
        policies: registry names to train, one run each (`<out>/train/<name>`).
        overrides: `key=value` overrides for every policy.
        per_policy: extra overrides by policy name.
    """

    config: str = DEFAULT_TRAIN_CONFIG
    policies: list[str] = field(default_factory=lambda: ["ncp-ltc"])
    overrides: list[str] = field(default_factory=list)
    per_policy: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportStage:
    """ONNX export of one trained policy.

    Attributes:
        policy: which trained policy to export.
        parity_steps: PyTorch vs onnxruntime check length (frames of a recorded drive).
        int8: also write the statically quantised int8 variant (model.int8.onnx), calibrated on the
            recorded drive, with its accuracy cost.
    """

    policy: str = "ncp-ltc"
    parity_steps: int = 200
    int8: bool = True


@dataclass(frozen=True)
class OnboardStage:
    """The exported model driving the evaluation track through onnxruntime.

    Attributes:
        laps: laps to drive.
        seed: episode seed.
        noise: Gaussian image-noise variance.
        max_time_s: simulation-time cap of the drive, s.
        precisions: the exported graphs to drive, each on the same seed: "fp32" (model.onnx), "int8"
            (model.int8.onnx; needs export.int8).
    """

    laps: int = 1
    seed: int = 0
    noise: float = 0.0
    max_time_s: float = 600.0
    precisions: list[str] = field(default_factory=lambda: ["fp32"])

    def __post_init__(self) -> None:
        unknown = [p for p in self.precisions if p not in ("fp32", "int8")]
        if unknown or not self.precisions:
            raise ValueError(
                f"onboard.precisions: expected a non-empty list of fp32/int8, got {self.precisions}"
            )


@dataclass(frozen=True)
class LaunchConfig:
    """A launch file.

    Attributes:
        name: the run's name (report title).
        out: output directory (relative to the launch file's folder, see `load_launch`).
        stages: stages to run, in order (a subset of record, train, eval, export, onboard, report).
        record: expert drives to record (`drive record`).
        train: policies to train (`drive train`).
        eval: closed-loop evaluation settings (`drive eval`: EvalConfig fields except `policies`, which
            are the trained checkpoints).
        export: ONNX export.
        onboard: onboard-runtime drive.
        executor: who runs the training and evaluation jobs (`drive.executor.config.ExecutorConfig`):
            this machine (default) or `{kind: ray, address: auto}`, a Ray cluster.
    """

    name: str = "run"
    out: str = "out/run"
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    record: RecordConfig = field(default_factory=RecordConfig)
    train: TrainStage = field(default_factory=TrainStage)
    eval: dict[str, Any] = field(default_factory=dict)
    export: ExportStage = field(default_factory=ExportStage)
    onboard: OnboardStage = field(default_factory=OnboardStage)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)

    def __post_init__(self) -> None:
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            raise ValueError(f"stages: unknown {unknown}; known: {list(STAGES)}")
        if "policies" in self.eval:
            raise ValueError("eval.policies: set train.policies instead (eval uses the trained checkpoints)")
        if self.export.policy not in self.train.policies:
            raise ValueError(
                f"export.policy {self.export.policy!r} is not in train.policies {self.train.policies}"
            )
        if "int8" in self.onboard.precisions and not self.export.int8:
            raise ValueError("onboard.precisions has int8 but export.int8 is false (nothing to drive)")


def load_launch(
    path: str | Path, overrides: Sequence[str] = (), out: str | Path | None = None
) -> LaunchConfig:
    """Load a launch file, its relative paths resolved against the file's folder.

    Args:
        path: the launch YAML.
        overrides: `key=value` overrides; their paths count as written in the file.
        out: the output directory from the command line (relative to the working directory), or None
            for the file's `out`.
    """
    from common.strict_config import load_config

    config = load_config(LaunchConfig, path, overrides)
    config = relative_to(config, Path(path).parent)
    return config if out is None else replace(config, out=str(out))


def relative_to(config: LaunchConfig, base: str | Path) -> LaunchConfig:
    """`config` with its relative paths (`out`, `train.config`, .xodr tracks) joined onto `base`."""

    def join(p: str) -> str:
        return p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p))

    def join_xodr(track: str) -> str:
        return join(track) if track.lower().endswith(".xodr") else track

    record = replace(config.record, tracks=[join_xodr(t) for t in config.record.tracks])
    eval_ = dict(config.eval)
    if isinstance(eval_.get("track"), str):
        eval_["track"] = join_xodr(eval_["track"])
    train = replace(config.train, config=join(config.train.config))
    return replace(config, out=join(config.out), record=record, train=train, eval=eval_)


class Launch:
    """Runs the stages of a `LaunchConfig`, skipping what is done.

    Args:
        config: the launch file's config.
        force: redo stages even when their outputs exist.
        progress: show progress bars.
    """

    def __init__(self, config: LaunchConfig, *, force: bool = False, progress: bool = True) -> None:
        self.config = config
        self.out = Path(config.out)
        self.force = force
        self.progress = progress
        self.state_path = self.out / "launch_state.json"
        self.state: dict[str, Any] = (
            json.loads(self.state_path.read_text()) if self.state_path.is_file() else {}
        )

    # Paths ----------------------------------------------------------------------------------------
    @property
    def recordings(self) -> Path:
        return self.out / "record"

    def run_dir(self, policy: str) -> Path:
        return self.out / "train" / policy

    def checkpoint(self, policy: str) -> Path:
        return self.run_dir(policy) / "checkpoints" / "best.pt"

    @property
    def model(self) -> Path:
        return self.out / "export" / "model.onnx"

    def model_of(self, precision: str) -> Path:
        """The exported graph of `precision` ("fp32": model.onnx, else model.<precision>.onnx)."""
        return self.model if precision == "fp32" else self.model.with_suffix(f".{precision}.onnx")

    # Driver ---------------------------------------------------------------------------------------
    def run(self, stages: list[str] | None = None) -> dict[str, Any]:
        """Run `stages` (default: the config's), in order; returns the state (timings, results).

        Raises:
            ValueError: a stage is done with another config than this one (and not `force`), before
                any stage runs; or another launch is writing into the same `out`.
        """
        from common.output_dir import OutputLock
        from drive.launch.stage_config import check_done_stages, validate_stage_configs

        stages = list(stages or self.config.stages)
        for stage in stages:
            if stage not in STAGES:
                raise ValueError(f"unknown stage {stage!r}; known: {list(STAGES)}")
        validate_stage_configs(self, stages)
        self.out.mkdir(parents=True, exist_ok=True)
        with OutputLock(self.out, "drive launch"):
            check_done_stages(self, stages)
            return self._run_stages(stages)

    def _run_stages(self, stages: list[str]) -> dict[str, Any]:
        from common.strict_config import save_config
        from drive.launch.stage_config import stage_digest

        save_config(self.config, self.out / "launch.yaml")
        for stage in stages:
            check()  # a Ctrl-C swallowed in the previous stage's tail stops the launch before the next one
            started = time.perf_counter()
            print(f"== {stage}", flush=True)
            # Tie whatever this stage writes to its config before it writes anything (see check_done_stages).
            digest = stage_digest(self.config, stage)
            self.state[stage] = {**self.state.get(stage, {}), "config_digest": digest}
            self._save_state()
            outcome = getattr(self, f"_stage_{stage}")()
            seconds = time.perf_counter() - started
            entry = {"seconds": round(seconds, 1), **outcome, "config_digest": digest}
            if outcome.get("skipped"):
                entry["seconds_when_run"] = self.state.get(stage, {}).get(
                    "seconds_when_run", self.state.get(stage, {}).get("seconds")
                )
            self.state[stage] = entry
            self._save_state()
            print(
                f"   {stage}: {'skipped (done)' if outcome.get('skipped') else f'{seconds:.0f} s'}",
                flush=True,
            )
        return self.state

    def _save_state(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2, default=str))
        tmp.replace(self.state_path)

    def _done(self, *paths: Path) -> bool:
        return not self.force and all(p.exists() for p in paths)

    # Stages ---------------------------------------------------------------------------------------
    def _stage_record(self) -> dict[str, Any]:
        from drive.closed_loop.record import record

        marker = self.recordings / "DONE"
        if self._done(marker):
            return {"skipped": True}
        marker.unlink(missing_ok=True)
        # --force redoes the episodes, deleting only folders a recorder wrote (a user's file survives);
        # a changed record config without --force was refused before any stage ran.
        paths = record(
            self.config.record,
            self.recordings,
            progress=self.progress,
            redo_incomplete=True,
            overwrite=self.force,
        )
        marker.write_text("complete\n")
        return {"episodes": len(paths)}

    def _stage_train(self) -> dict[str, Any]:
        from drive.launch.launch_jobs import train_on_executor, train_policy

        results: dict[str, dict[str, Any]] = {}
        jobs: dict[str, tuple[str, str, list[str], str]] = {}
        for policy in self.config.train.policies:
            run_dir = self.run_dir(policy)
            if self._done(run_dir / "DONE"):
                results[policy] = {"skipped": True}
                continue
            if self.force and run_dir.exists():
                shutil.rmtree(run_dir)
            overrides = [
                f"policy.name={policy}",
                *self.config.train.overrides,
                *self.config.train.per_policy.get(policy, []),
            ]
            jobs[policy] = (self.config.train.config, str(self.recordings), overrides, str(run_dir))
        if self.config.executor.kind == "local":
            for policy, args in jobs.items():
                resume = (self.run_dir(policy) / "checkpoints" / "last.pt").is_file()
                print(f"   training {policy}{' (resuming)' if resume else ''}", flush=True)
                results[policy] = train_policy(*args)
        elif jobs:
            print(f"   training {', '.join(jobs)} on the Ray cluster", flush=True)
            results.update(train_on_executor(self.config.executor, jobs, self.progress))
        skipped = all(r.get("skipped") for r in results.values())
        return {"skipped": skipped, "policies": results} if skipped else {"policies": results}

    def _eval_config(self) -> EvalConfig:
        from common.strict_config import from_dict
        from drive.eval.plan import EvalConfig

        data = {**self.config.eval, "policies": [str(self.checkpoint(p)) for p in self.config.train.policies]}
        return from_dict(EvalConfig, data, prefix="eval.")

    def _stage_eval(self) -> dict[str, Any]:
        from drive.eval.evaluate import evaluate

        out = self.out / "eval"
        if self._done(out / "metrics.json"):
            return {"skipped": True}
        evaluate(self._eval_config(), out, progress=self.progress, executor=self.config.executor)
        return {"report": str(out / "report.md")}

    def _stage_export(self) -> dict[str, Any]:
        from drive.export.pipeline import export_checkpoint

        if self._done(self.model):
            return {"skipped": True}
        episodes = sorted(self.recordings.glob("episode-*"))
        result = export_checkpoint(
            self.checkpoint(self.config.export.policy),
            self.model,
            parity_steps=self.config.export.parity_steps,
            frames_dir=episodes[-1] if episodes else None,
            int8=self.config.export.int8,
        )
        print(result.summary(), flush=True)
        costs = {
            name: {
                "max_abs_diff_1pm": cost.max_abs_diff_1pm,
                "rms_pct": 100 * cost.rms_diff_1pm / cost.curvature_rms_1pm,
            }
            for name, cost in result.variants.items()
        }
        return {
            "model": str(self.model),
            "parity_max_abs_diff_1pm": result.parity.max_abs_diff_1pm,
            "variants": costs,
        }

    def _stage_onboard(self) -> dict[str, Any]:
        from drive.closed_loop.onboard_drive import drive_onboard
        from sim.perturbations import gaussian_spec

        out = self.out / "onboard"
        if self._done(out / "metrics.json"):
            return {"skipped": True}
        eval_config = self._eval_config()
        cfg = self.config.onboard
        summaries = {}
        for precision in cfg.precisions:
            result = drive_onboard(
                self.model_of(precision),
                track=eval_config.track,
                condition=eval_config.conditions[0],
                laps=cfg.laps,
                seed=cfg.seed,
                perturbations=gaussian_spec(cfg.noise),
                max_time_s=cfg.max_time_s,
            )
            summaries[precision] = {
                "model": str(self.model_of(precision)),
                "metrics": result["metrics"],
                "deadline": result["deadline"],
                "interventions": result["interventions"],
            }
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(summaries, indent=2, default=str))
        return summaries

    def _stage_report(self) -> dict[str, Any]:
        from drive.launch.run_report import write_launch_report

        path = write_launch_report(self)
        print(path.read_text(), flush=True)
        return {"report": str(path)}
