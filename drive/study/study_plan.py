"""What a study runs: its config (`StudyConfig`, a YAML file) and the plan of jobs it turns into.

    protocols × policies × training seeds  ──► one TrainJob each (a `drive train` run)
    every trained model ──► one EvalJob (a `drive eval` of that model: the protocol's track × conditions ×
                           noise levels × evaluation seeds; the same episodes for every model)

A protocol says where the drives come from and where the models are tested:
- `held_out`: train on the recordings, evaluate on a track none of them drove (the demo's question).
- `in_distribution`: train and evaluate on the same track (the paper's closed-loop protocol: its models
  trained on drives of the test track itself), with evaluation starts and seeds the recordings never used.
The protocol's recordings are either an existing folder (`data`) or recorded by the study (`record`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from drive.closed_loop.record import RecordConfig
from drive.executor.config import ExecutorConfig

PROTOCOL_KINDS = ("held_out", "in_distribution")


@dataclass(frozen=True)
class ProtocolConfig:
    """One protocol of the study.

    Attributes:
        name: the protocol's name in paths and tables (default: its kind).
        kind: `held_out` (the evaluation track is not among the training tracks) or `in_distribution`
            (it is); checked against the recordings' metadata before anything runs.
        track: the evaluation track (an embedded preset or "seed-<n>").
        data: an existing recordings folder (relative paths: to the study file's folder); or
        record: recordings the study makes itself into `<out>/<protocol>/record` (skip-done).
    """

    name: str = ""
    kind: Literal["held_out", "in_distribution"] = "held_out"
    track: str = "forest"
    data: str | None = None
    record: RecordConfig | None = None

    def __post_init__(self) -> None:
        if (self.data is None) == (self.record is None):
            raise ValueError(
                "give exactly one of `data` (a recordings folder) or `record` (drives to record)"
            )
        if not self.name:
            object.__setattr__(self, "name", self.kind)


@dataclass(frozen=True)
class StudyTrain:
    """The models of the study.

    Attributes:
        config: base training YAML (relative paths: to the study file's folder).
        policies: registry names; every policy is trained with every seed.
        seeds: training seeds (`--set seed=N`), the unit of replication of the statistics.
        overrides: `key=value` overrides for every run.
        per_policy: extra overrides by policy name (e.g. epochs).
    """

    config: str = "train_default.yaml"
    policies: list[str] = field(default_factory=lambda: ["ncp-ltc", "ncp-cfc", "lstm", "cnn"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    overrides: list[str] = field(default_factory=list)
    per_policy: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("policies", "seeds"):
            values = getattr(self, name)
            if not values or len(set(values)) != len(values):
                raise ValueError(f"train.{name}: give at least one value, each once (got {values})")
        unknown = sorted(set(self.per_policy) - set(self.policies))
        if unknown:
            raise ValueError(f"train.per_policy names {unknown}, which are not in train.policies")


@dataclass(frozen=True)
class StudyConfig:
    """A study file (`drive study FILE.yaml`).

    Attributes:
        name: title of the report.
        out: output folder (relative: to the study file's folder).
        protocols: the protocols (names unique), each with its drives and evaluation track.
        train: the models to train.
        eval: closed-loop evaluation settings shared by every model (`EvalConfig` fields except
            `policies`, `track` and `workers`): noise levels and space, conditions, seeds, laps, saliency.
        workers: jobs run at once on this machine with the local executor (processes, one thread each).
        executor: who runs the jobs: `{kind: local}` (default) or `{kind: ray, address: auto}` (a Ray
            cluster; `drive.executor.config.ExecutorConfig`).
        reference: the policy the paired differences are taken against (default: the first policy).
    """

    name: str = "study"
    out: str = "out/study"
    protocols: list[ProtocolConfig] = field(default_factory=lambda: [ProtocolConfig(record=RecordConfig())])
    train: StudyTrain = field(default_factory=StudyTrain)
    eval: dict[str, Any] = field(default_factory=dict)
    workers: int = 2
    reference: str | None = None
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)

    def __post_init__(self) -> None:
        names = [p.name for p in self.protocols]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"protocols: give at least one, each name once (got {names})")
        for key in ("policies", "track", "workers"):
            if key in self.eval:
                raise ValueError(f"eval.{key}: set by the study (train.policies, protocols.*.track, workers)")
        if self.workers < 1:
            raise ValueError(f"workers must be ≥ 1, got {self.workers}")
        if eval_backend(self.eval) == "carla" and self.executor.kind == "local" and self.workers > 1:
            raise ValueError(
                f"workers {self.workers} with eval on sim 'carla': locally the study's evaluations would "
                "share one CARLA server (one synchronous client per server); use workers 1, or executor kind "
                "ray with a `carla` resource on each node that runs a server"
            )
        if self.reference is not None and self.reference not in self.train.policies:
            raise ValueError(f"reference {self.reference!r} is not in train.policies {self.train.policies}")

    @property
    def reference_policy(self) -> str:
        return self.reference or self.train.policies[0]

    def protocol(self, name: str) -> ProtocolConfig:
        """The protocol called `name`."""
        return next(p for p in self.protocols if p.name == name)


def eval_backend(eval_settings: dict[str, Any]) -> str:
    """The simulator backend a study's `eval` section names (`sim: carla` or `sim: {backend: carla}`)."""
    sim = eval_settings.get("sim", "embedded")
    return str(sim if isinstance(sim, str) else (sim or {}).get("backend", "embedded"))


@dataclass(frozen=True)
class TrainJob:
    """Train one model: `policy` with training seed `seed` on the protocol's recordings."""

    protocol: str
    policy: str
    seed: int

    @property
    def key(self) -> str:
        return f"train/{self.protocol}/{self.policy}/seed-{self.seed}"


@dataclass(frozen=True)
class EvalJob:
    """Evaluate the model of `TrainJob(protocol, policy, seed)` closed loop."""

    protocol: str
    policy: str
    seed: int

    @property
    def key(self) -> str:
        return f"eval/{self.protocol}/{self.policy}/seed-{self.seed}"

    @property
    def needs(self) -> str:
        """The key of the train job whose checkpoint this evaluates."""
        return TrainJob(self.protocol, self.policy, self.seed).key


def plan_jobs(config: StudyConfig) -> list[TrainJob | EvalJob]:
    """Every job of the study: per protocol, policy and seed a train job, then its eval job."""
    cells = [
        (protocol.name, policy, seed)
        for protocol in config.protocols
        for seed in config.train.seeds
        for policy in config.train.policies
    ]
    jobs: list[TrainJob | EvalJob] = [TrainJob(*cell) for cell in cells]
    return jobs + [EvalJob(*cell) for cell in cells]


def resolve_paths(config: StudyConfig, base: Path) -> StudyConfig:
    """`config` with its relative paths (out, train.config, protocols.*.data) made absolute against
    `base`, the study file's folder, so a study runs the same from any working directory."""

    def absolute(path: str) -> str:
        p = Path(path).expanduser()
        return str(p if p.is_absolute() else (base / p).resolve())

    protocols = [
        dataclasses.replace(p, data=absolute(p.data)) if p.data is not None else p for p in config.protocols
    ]
    train = dataclasses.replace(config.train, config=absolute(config.train.config))
    return dataclasses.replace(config, out=absolute(config.out), protocols=protocols, train=train)
