"""Which executor runs a plan, as a strict config: `executor: {kind: ray, address: auto}` in a study or launch
file, `--executor ray` on `drive study` / `drive eval`.

    local  this machine: a process pool of `workers` processes (the default, no Ray needed)
    ray    a Ray cluster (`pip install -e '.[cluster]'`): `address: auto` joins the cluster this machine is
           part of (`ray start --head` / `ray start --address=...`), `ray://head:10001` a remote one, no
           address starts a private Ray on this machine for the run
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from drive.executor.tasks import Outcome, Task

EXECUTOR_KINDS = ("local", "ray")


@dataclass(frozen=True)
class ExecutorConfig:
    """The executor of a study, evaluation or launch.

    Attributes:
        kind: "local" (process pool on this machine) or "ray" (a Ray cluster).
        address: ray only: "auto" (the running cluster this machine joined), "ray://host:10001" or
            "host:6379"; None starts a Ray instance on this machine for the run and stops it after.
        retries: further attempts of a failed job (a crashed worker, a lost node, an exception) before it
            is reported by name; a job whose error says its inputs are wrong (ValueError) is not retried.
        cpus_per_job: CPU cores a job reserves on a cluster (also its torch threads).
        train_gpus: GPUs a training job reserves on a cluster (0: trains on CPU).
        num_cpus: ray without an address: CPU cores of the Ray started here; None: all of them.
        artifacts: ray only: "shared" (every node sees the output folder at the same path: a shared file
            system, or one machine) or "ship" (no shared file system: a job's input folders travel to its
            node through Ray's object store, and its output folders come back into the output folder;
            `drive.executor.artifacts`).
    """

    kind: Literal["local", "ray"] = "local"
    address: str | None = None
    retries: int = 2
    cpus_per_job: float = 1.0
    train_gpus: float = 0.0
    num_cpus: int | None = None
    artifacts: Literal["shared", "ship"] = "shared"

    def __post_init__(self) -> None:
        if self.kind not in EXECUTOR_KINDS:
            raise ValueError(f"executor.kind must be one of {list(EXECUTOR_KINDS)}, got {self.kind!r}")
        if self.kind == "local" and (self.address is not None or self.num_cpus is not None):
            raise ValueError("executor.address and executor.num_cpus are for kind 'ray'; the kind is 'local'")
        if self.artifacts not in ("shared", "ship"):
            raise ValueError(f"executor.artifacts must be 'shared' or 'ship', got {self.artifacts!r}")
        if self.retries < 0:
            raise ValueError(f"executor.retries must be ≥ 0, got {self.retries}")
        if not self.cpus_per_job > 0 or not self.train_gpus >= 0:
            raise ValueError(
                f"executor.cpus_per_job must be > 0 and train_gpus ≥ 0, got {self.cpus_per_job}, "
                f"{self.train_gpus}"
            )
        if self.num_cpus is not None and self.num_cpus < 1:
            raise ValueError(f"executor.num_cpus must be ≥ 1 or None, got {self.num_cpus}")


class Executor(Protocol):
    """Runs a plan of tasks (dependencies first) and returns what came of each, by key."""

    def run(self, tasks: list[Task]) -> Outcome: ...


def make_executor(
    config: ExecutorConfig, workers: int, progress: bool = True, desc: str = "study"
) -> Executor:
    """The executor `config` names.

    Args:
        config: the executor section.
        workers: local only: processes at once (1: in this process).
        progress: show the progress bar.
        desc: the progress bar's label.

    Raises:
        ImportError: kind "ray" without Ray installed; the message says how to install it.
    """
    require(config)  # fail now, before anything runs, with the install hint
    if config.kind == "ray":
        from drive.executor.ray_cluster import RayExecutor

        return RayExecutor(config, progress=progress, desc=desc)
    from drive.executor.local import LocalExecutor

    return LocalExecutor(workers, progress=progress, retries=config.retries, desc=desc)


def require(config: ExecutorConfig) -> None:
    """Check that the executor can run here (Ray installed for kind "ray").

    Raises:
        ImportError: Ray is missing; the message says `pip install -e '.[cluster]'`.
    """
    if config.kind == "ray":
        from drive.executor.ray_cluster import import_ray

        import_ray()
