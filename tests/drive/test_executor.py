"""The local executor and the executor config, without Ray: dependencies first, bounded retries of a failing
task (inline and in the WorkerPool), failures and blocked tasks by name, strict config, and `--executor ray`
without Ray installed: one line saying how to install it, before anything ran."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from common.strict_config import ConfigError, from_dict
from drive.cli import main
from drive.executor.config import ExecutorConfig, make_executor
from drive.executor.local import LocalExecutor
from drive.executor.tasks import Task

REPO = Path(__file__).resolve().parents[2]


def _square(x: int) -> int:
    return x * x


def _fails_until(counter: str, good_from: int, value: int) -> int:
    """Fails (RuntimeError) until its `good_from`-th attempt; attempts are counted in the file `counter`."""
    path = Path(counter)
    attempt = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempt))
    if attempt < good_from:
        raise RuntimeError(f"flaky, attempt {attempt}")
    return value


def _bad_input() -> None:
    raise ValueError("wrong input")


def _tasks(tmp: Path) -> list[Task]:
    return [
        Task("a", _square, (3,)),
        Task("flaky", _fails_until, (str(tmp / "flaky"), 2, 7)),  # fails once
        Task("broken", _fails_until, (str(tmp / "broken"), 99, 0)),  # always fails
        Task("after-broken", _square, (2,), needs=("broken",)),
        Task("after-a", _square, (4,), needs=("a",)),
        Task("bad", _bad_input, ()),
    ]


@pytest.mark.parametrize("workers", [1, 2])
def test_retries_failures_and_blocked_tasks(tmp_path, workers):
    outcome = LocalExecutor(workers, progress=False, retries=2).run(_tasks(tmp_path))
    assert outcome.results == {"a": 9, "flaky": 7, "after-a": 16}
    assert outcome.attempts["flaky"] == 2 and (tmp_path / "flaky").read_text() == "2"
    assert (tmp_path / "broken").read_text() == "3"  # 1 + 2 retries, then given up
    assert outcome.failures["broken"] == "RuntimeError: flaky, attempt 3 (after 3 attempts)"
    assert outcome.failures["bad"] == "ValueError: wrong input"  # bad input is not retried
    assert outcome.blocked == {"after-broken": "needs broken, which did not finish"}
    assert not outcome.ok


def test_no_retries_reports_the_first_failure(tmp_path):
    outcome = LocalExecutor(1, progress=False).run(_tasks(tmp_path))
    assert outcome.failures["flaky"] == "RuntimeError: flaky, attempt 1"
    assert (tmp_path / "flaky").read_text() == "1"


def test_the_graph_is_checked_before_running():
    with pytest.raises(ValueError, match="unknown tasks"):
        LocalExecutor(1, progress=False).run([Task("a", _square, (1,), needs=("nope",))])
    with pytest.raises(ValueError, match="cycle"):
        LocalExecutor(1, progress=False).run(
            [Task("a", _square, (1,), needs=("b",)), Task("b", _square, (1,), needs=("a",))]
        )


def test_executor_config_is_strict():
    assert from_dict(ExecutorConfig, {"kind": "ray", "address": "auto"}).address == "auto"
    with pytest.raises(ConfigError, match="adress"):
        from_dict(ExecutorConfig, {"kind": "ray", "adress": "auto"})
    with pytest.raises(ValueError, match="executor.kind"):
        ExecutorConfig(kind="slurm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="for kind 'ray'"):
        ExecutorConfig(address="auto")
    with pytest.raises(ValueError, match="retries"):
        ExecutorConfig(retries=-1)
    assert isinstance(make_executor(ExecutorConfig(), workers=2, progress=False), LocalExecutor)


def test_ray_executor_without_ray_is_one_line_saying_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as when not installed
    study = {
        "protocols": [{"name": "p", "track": "forest", "data": str(tmp_path / "nowhere")}],
        "train": {"policies": ["ncp-ltc"], "seeds": [0]},
        "out": "out",
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(study))
    assert main(["study", str(tmp_path / "s.yaml"), "--quiet", "--executor", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install -e '.[cluster]'" in err[0], err
    assert not (tmp_path / "out").exists()  # refused before anything ran
    assert main(["eval", "--policy", "expert", "--out", str(tmp_path / "e"), "--executor", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install -e '.[cluster]'" in err[0], err
    assert not (tmp_path / "e").exists()


def test_study_and_launch_files_take_a_strict_executor_section(tmp_path):
    from drive.launch.runner import LaunchConfig
    from drive.study.study_plan import StudyConfig

    study = {"protocols": [{"name": "p", "data": "d"}], "executor": {"kind": "ray", "address": "auto"}}
    assert from_dict(StudyConfig, study).executor == ExecutorConfig(kind="ray", address="auto")
    with pytest.raises(ConfigError, match="executor.retry"):
        from_dict(StudyConfig, {**study, "executor": {"kind": "ray", "retry": 3}})
    launch = from_dict(LaunchConfig, {"executor": {"kind": "ray", "train_gpus": 1}})
    assert launch.executor.kind == "ray" and launch.executor.train_gpus == 1.0


def test_a_local_study_on_carla_with_several_workers_is_refused():
    from drive.study.study_plan import StudyConfig

    study = {"protocols": [{"name": "p", "data": "d"}], "eval": {"sim": {"backend": "carla"}}, "workers": 2}
    with pytest.raises(ValueError, match="share one CARLA server"):
        from_dict(StudyConfig, study)
    assert from_dict(StudyConfig, {**study, "workers": 1}).workers == 1
    assert from_dict(StudyConfig, {**study, "executor": {"kind": "ray"}}).executor.kind == "ray"


CTRL_C_SCRIPT = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    from drive.executor.local import LocalExecutor
    from drive.executor.tasks import Task

    def job(folder, i):
        (folder / f"started-{i}").touch()
        try:
            time.sleep(60)
        finally:
            (folder / f"finally-{i}").touch()

    def on_sigterm(signum, frame):  # as the CLI does: SIGTERM raises in the parent
        raise KeyboardInterrupt

    if __name__ == "__main__":
        signal.signal(signal.SIGTERM, on_sigterm)
        folder = Path(sys.argv[1])
        try:
            LocalExecutor(2, progress=False).run([Task(f"t{i}", job, (folder, i)) for i in range(4)])
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
    """
)


def test_ctrl_c_stops_the_local_executors_pool_as_in_eval(tmp_path):
    """Ctrl-C to the process group reaches only the parent: the running jobs are stopped inside Python
    (their `finally` runs), the rest never start, and there is one line, no traceback per worker."""
    script = tmp_path / "study_pool.py"
    script.write_text(CTRL_C_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)], env=env, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("started-*"))) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()  # type: ignore[union-attr]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=30)  # far below the jobs' 60 s: they were stopped, not waited for
    err = proc.stderr.read().decode()  # type: ignore[union-attr]
    assert proc.returncode == 130 and err.strip() == "interrupted", err
    assert sorted(p.name for p in tmp_path.glob("finally-*")) == ["finally-0", "finally-1"]
    assert not (tmp_path / "started-2").exists()


def test_a_job_the_cluster_cannot_hold_is_refused_naming_the_resource():
    from drive.executor.ray_cluster import check_feasible
    from drive.executor.tasks import Resources

    carla = Task("eval/x", _square, (1,), resources=Resources(custom={"carla": 1.0}))
    check_feasible([carla], {"CPU": 2.0, "carla": 1.0})
    with pytest.raises(ValueError, match=r"job eval/x needs 1 carla, but the Ray cluster has 0.*--resources"):
        check_feasible([carla], {"CPU": 8.0})
    with pytest.raises(ValueError, match="needs 1 GPU"):
        check_feasible([Task("train/y", _square, (1,), resources=Resources(gpus=1.0))], {"CPU": 8.0})


def test_ray_is_imported_in_one_module_only():
    """Ray is optional: only drive/executor/ray_cluster.py imports it (lazily, with the install hint)."""
    import ast

    importers = []
    for package in ("common", "drive", "perception", "policies", "sim", "recordings"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                if any(n == "ray" or n.startswith("ray.") for n in names):
                    importers.append(str(path.relative_to(REPO)))
    assert importers == ["drive/executor/ray_cluster.py"]


def _reads_and_writes(source: str, target: str) -> int:
    text = (Path(source) / "data.txt").read_text()
    Path(target).mkdir(parents=True, exist_ok=True)
    (Path(target) / "result.txt").write_text(text.upper())
    return len(text)


def test_shipped_folders_travel_to_a_node_and_back_at_the_same_paths(tmp_path):
    """`artifacts: ship` on a node without the study's files: the inputs appear at their absolute paths
    (once: a second job with the same archive does not unpack again), the outputs come back packed."""
    from drive.executor.artifacts import MARKER, pack, run_shipped, unpack

    source, target = tmp_path / "record", tmp_path / "train" / "seed-0"
    source.mkdir()
    (source / "data.txt").write_text("frames")
    packed_input = pack([str(source)])
    (source / "data.txt").unlink()
    source.rmdir()  # as on another node: nothing there
    result, packed_output = run_shipped(
        _reads_and_writes, (str(source), str(target)), True, [str(source)], [packed_input], [str(target)]
    )
    assert result == 6 and (source / "data.txt").read_text() == "frames"
    assert Path(str(source) + MARKER).is_file()
    (source / "data.txt").write_text("changed here")  # the same archive again: not unpacked over it
    run_shipped(_reads_and_writes, (str(source), str(target)), True, [str(source)], [packed_input], [])
    assert (source / "data.txt").read_text() == "changed here"
    (target / "result.txt").unlink()
    assert packed_output is not None
    unpack(packed_output)  # the driver's side
    assert (target / "result.txt").read_text() == "FRAMES"
    # On the driver's own node nothing is packed or unpacked.
    assert run_shipped(_reads_and_writes, (str(source), str(target)), False, [], [], [str(target)])[1] is None
