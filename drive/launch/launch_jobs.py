"""The jobs of a launch that an executor can run elsewhere: training one policy (the train stage's unit).

`train_policy` is a pure function of its arguments that writes into the policy's run folder, so the train
stage gives the same runs in this process (the default) and on a Ray cluster (`executor: {kind: ray}`),
where the policies train at once, each job reserving `executor.cpus_per_job` CPUs and `train_gpus` GPUs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from drive.executor.config import ExecutorConfig, make_executor
from drive.executor.tasks import Resources, Task


def train_policy(config_path: str, recordings: str, overrides: list[str], run_dir: str) -> dict[str, Any]:
    """Train one policy into `run_dir` (resuming from its last checkpoint) and mark it DONE.

    Returns:
        {"seconds": wall time, "summary": the training's summary}.
    """
    from drive.training.run import resolve_config, run_training

    out = Path(run_dir)
    resume = (out / "checkpoints" / "last.pt").is_file()
    started = time.perf_counter()
    config = resolve_config(config_path, Path(recordings), overrides)
    summary = run_training(config, out, resume=resume)
    (out / "DONE").write_text("complete\n")
    return {"seconds": round(time.perf_counter() - started, 1), "summary": summary}


def train_on_executor(
    executor: ExecutorConfig, jobs: dict[str, tuple[str, str, list[str], str]], progress: bool
) -> dict[str, dict[str, Any]]:
    """Train several policies at once with `executor`; `jobs` maps each policy to `train_policy`'s
    arguments. Returns each policy's result.

    Raises:
        RuntimeError: naming every policy whose training failed (after the executor's retries).
    """
    resources = Resources(cpus=executor.cpus_per_job, gpus=executor.train_gpus)
    tasks = [  # the recordings in, the run folder out (`executor.artifacts: ship`)
        Task(f"train/{policy}", train_policy, args, (), 1.0, resources, (args[1],), (args[3],))
        for policy, args in jobs.items()
    ]
    outcome = make_executor(executor, workers=1, progress=progress, desc="train").run(tasks)
    if outcome.failures:
        failed = "; ".join(f"{key}: {error}" for key, error in outcome.failures.items())
        raise RuntimeError(f"training failed on the cluster: {failed}")
    return {key.removeprefix("train/"): result for key, result in outcome.results.items()}
