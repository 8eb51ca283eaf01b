"""The `ray` executor: a plan's tasks as Ray tasks on a cluster; the one module that imports Ray.

Every task reserves its `Resources` (CPUs, GPUs, custom resources such as a node's `carla` server), so Ray
places it on a node that has them and never runs more at once than the cluster holds. Dependencies are
kept here, as in the local executor: a task is submitted once everything it needs has finished, and one
whose dependency failed is reported as blocked. Jobs write their files under the plan's output folder:
with `artifacts: shared` every node sees it at the same path (a shared file system, or one machine); with
`artifacts: ship` a job's input and output folders travel through Ray's object store
(`drive.executor.artifacts`). What a job returns (small summaries, episode outcomes) comes back that way.
A failed attempt — an exception, a crashed worker, a lost node — is retried up to `retries` times, then
reported by name while the rest of the plan goes on. One progress bar covers the cluster's jobs, with
rate and ETA.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from drive.executor.config import ExecutorConfig
from drive.executor.tasks import (
    Outcome,
    Task,
    check_graph,
    mark_blocked,
    plan_order,
    progress_bar,
    settle_failure,
    settled,
)

INSTALL_HINT = "the ray executor needs Ray: pip install -e '.[cluster]' (or pip install 'ray[default]')"


def import_ray() -> ModuleType:
    """The `ray` module.

    Raises:
        ImportError: Ray is not installed; the message says how to install it.
    """
    try:
        import ray
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    module: ModuleType = ray
    return module


class RayExecutor:
    """Runs tasks on a Ray cluster (module docstring).

    Args:
        config: the executor section (address, retries, per-job resources).
        progress: show the progress bar.
        desc: the progress bar's label.
    """

    def __init__(self, config: ExecutorConfig, progress: bool = True, desc: str = "study") -> None:
        self.config = config
        self.progress = progress
        self.desc = desc

    def run(self, tasks: list[Task]) -> Outcome:
        """Run `tasks` on the cluster (dependencies first); returns results and failures by key."""
        check_graph(tasks)
        ray = import_ray()
        started_here = connect(ray, self.config)
        try:
            check_feasible(tasks, ray.cluster_resources())
            bar = progress_bar(sum(t.cost_s for t in tasks), self.progress, self.desc)
            try:
                return self._run(ray, tasks, bar)
            finally:
                bar.close()
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, ray: ModuleType, tasks: list[Task], bar: Any) -> Outcome:
        outcome = Outcome()
        waiting = list(plan_order(tasks))
        running: dict[Any, Task] = {}  # ObjectRef -> task
        remote = ray.remote(_run_task if self.config.artifacts == "shared" else _run_shipped_task)
        self._ray, self._driver_node = ray, ray.get_runtime_context().get_node_id()
        self._packed: dict[str, Any] = {}  # input folder -> ObjectRef of its archive (once per run)
        try:
            while waiting or running:
                for task in [t for t in waiting if settled(t, outcome)]:
                    waiting.remove(task)
                    if mark_blocked(task, outcome):
                        bar.update(task.cost_s)
                        continue
                    running[self._submit(remote, task)] = task
                if not running:
                    continue
                done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for ref in done:
                    task = running.pop(ref)
                    try:
                        outcome.results[task.key] = self._receive(ray.get(ref))
                    except Exception as err:  # the job's error, or Ray's (worker crashed, node lost)
                        if settle_failure(task, _cause(ray, err), outcome, self.config.retries):
                            running[self._submit(remote, task)] = task
                            continue
                    bar.update(task.cost_s)
                bar.set_postfix_str(f"{len(running)} running on the cluster", refresh=False)
        except BaseException:
            for ref in running:  # Ctrl-C: stop what runs on the cluster, not just this process
                ray.cancel(ref, force=True)
            raise
        return outcome

    def _submit(self, remote: Any, task: Task) -> Any:
        res = task.resources
        options: dict[str, Any] = {
            "num_cpus": res.cpus,
            "max_retries": 0,
        }  # retries are ours (settle_failure)
        if res.gpus:
            options["num_gpus"] = res.gpus
        if res.custom:
            options["resources"] = dict(res.custom)
        threads = max(1, int(res.cpus))
        if self.config.artifacts == "shared":
            return remote.options(**options).remote(task.fn, task.args, threads)
        from drive.executor.artifacts import pack

        for path in task.inputs:  # a folder is packed when first needed (a checkpoint: after its training)
            if path not in self._packed:
                self._packed[path] = self._ray.put(pack([path]))
        ship = (self._driver_node, task.inputs, task.outputs)
        packed = [self._packed[path] for path in task.inputs]
        return remote.options(**options).remote(task.fn, task.args, threads, ship, *packed)

    def _receive(self, value: Any) -> Any:
        """A job's result; with `artifacts: ship` its output folders are unpacked here first."""
        if self.config.artifacts == "shared":
            return value
        from drive.executor.artifacts import unpack

        result, packed = value
        if packed is not None:
            unpack(packed)
        return result


def check_feasible(tasks: list[Task], cluster: dict[str, float]) -> None:
    """Fail at once, naming the resource, when a task needs more of something than the whole cluster has
    (Ray would otherwise wait for it forever).

    Args:
        tasks: the plan.
        cluster: the cluster's total resources (`ray.cluster_resources()`), e.g. {"CPU": 8, "carla": 2}.

    Raises:
        ValueError: e.g. a CARLA evaluation on a cluster where no node declared a `carla` resource.
    """
    for task in tasks:
        res = task.resources
        needs = {"CPU": res.cpus, "GPU": res.gpus, **res.custom}
        for name, amount in needs.items():
            if amount > cluster.get(name, 0.0):
                hint = (
                    " (start each machine that runs a CARLA server with `ray start --address=HEAD:6379 "
                    "--resources '{\"carla\": 1}'`)"
                    if name == "carla"
                    else ""
                )
                raise ValueError(
                    f"job {task.key} needs {amount:g} {name}, but the Ray cluster has "
                    f"{cluster.get(name, 0.0):g}{hint}"
                )


def connect(ray: ModuleType, config: ExecutorConfig) -> bool:
    """Join the cluster `config.address` names, or start a private Ray on this machine (no address);
    returns whether it was started here (and is to be shut down after). An already connected process
    (e.g. a test's or a notebook's `ray.init`) is used as it is."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home from a study
    # Ray renices its workers to 15 by default; beside other work on the machine that starves the jobs
    # (50x slower on a loaded workstation), so a Ray started here runs them at the driver's priority.
    os.environ.setdefault("RAY_worker_niceness", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, "logging_level": "WARNING"}
    if config.address is None:
        kwargs["num_cpus"] = config.num_cpus
    else:
        kwargs["address"] = config.address
    try:
        ray.init(**kwargs)
    except ConnectionError as err:
        raise ConnectionError(
            f"executor.address {config.address!r}: no Ray cluster there ({err}); start one with "
            "`ray start --head` (and `ray start --address=HEAD:6379` on the other machines)"
        ) from None
    return True


def _cause(ray: ModuleType, error: Exception) -> BaseException:
    """The job's own exception inside a `RayTaskError` (so retries and reports see the real kind)."""
    if isinstance(error, ray.exceptions.RayTaskError):
        cause = getattr(error, "cause", None)
        if isinstance(cause, BaseException):
            return cause
    return error


def _run_task(fn: Any, args: tuple[Any, ...], threads: int) -> Any:
    """What a Ray worker runs: the job with as many torch threads as CPUs it reserved."""
    import torch

    torch.set_num_threads(threads)
    return fn(*args)


Shipping = tuple[str, tuple[str, ...], tuple[str, ...]]
"""(the driver's node id, a job's input folders, its output folders)."""


def _run_shipped_task(
    fn: Any, args: tuple[Any, ...], threads: int, ship: Shipping, *packed: Any
) -> tuple[Any, bytes | None]:
    """`_run_task` with its folders shipped (`drive.executor.artifacts.run_shipped`) when this worker is
    on another node than the driver (`ship`: the driver's node id, input folders, output folders)."""
    import torch

    from drive.executor.artifacts import run_shipped

    driver_node, inputs, outputs = ship
    torch.set_num_threads(threads)
    remote = import_ray().get_runtime_context().get_node_id() != driver_node
    return run_shipped(fn, args, remote, inputs, packed, outputs)
