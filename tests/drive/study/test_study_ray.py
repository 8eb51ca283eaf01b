"""A micro study through `--executor ray` on a real local Ray (2 CPUs, loopback, one instance for the module):
the per-episode table and the report's tables equal the same study run by the local executor; a job that
fails once is retried and the study completes; a job that always fails is named in the report and in the
exit status while the other jobs finish. And `drive eval --executor ray` equals the serial evaluation, on
the embedded simulator and on a (fake) CARLA server that the node declares as its `carla` resource."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

import drive.study.runner as runner
from drive.cli import main
from drive.study.jobs import run_job

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[3]
STUDY = {
    "name": "ray-micro",
    "protocols": [
        {
            "name": "held_out",
            "kind": "held_out",
            "track": "forest",
            "record": {"tracks": ["oval"], "conditions": ["summer"], "episodes": 2, "minutes": 0.1},
        }
    ],
    "train": {
        "config": str(ROOT / "launch" / "train_default.yaml"),
        "policies": ["ncp-ltc"],
        "seeds": [0, 1],
        "overrides": ["epochs=1", "batch=2", "data.window=4", "data.stride=4", "log_interval=1"],
    },
    "eval": {"noise": [0.0, 0.2], "seeds": [0], "laps": None, "max_steps": 10},
    "workers": 1,
}
INJECT = "inject.json"  # in a study's out: which job fails and how often (read by `flaky_run_job`)


def flaky_run_job(config, job):
    """`run_job` that fails the job named in `<out>/inject.json` its first `times` attempts (-1: always).
    Attempts are counted in files, so this works in Ray's worker processes."""
    out = Path(config.out)
    inject = json.loads((out / INJECT).read_text())
    if job.key == inject["key"]:
        counter = out / f"attempts-{job.key.replace('/', '_')}"
        attempts = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(attempts))
        if inject["times"] < 0 or attempts <= inject["times"]:
            raise RuntimeError(f"injected failure, attempt {attempts}")
    return run_job(config, job)


@pytest.fixture(scope="module")
def local_ray():
    """One real Ray for the module: 2 CPUs on loopback, no dashboard; shut down after."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_worker_niceness"] = "0"  # Ray's default (15) starves its workers beside other work
    # Workers import this test module (flaky_run_job) and the project from the repository root.
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    ray.init(
        num_cpus=2,
        resources={"carla": 1},  # this node runs one (fake) CARLA server
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        runtime_env={
            "env_vars": {"PYTHONPATH": path},
            # CARLA clients in Ray's workers drive on the loopback fakes (tests/drive/carla_pool_fakes.py).
            "worker_process_setup_hook": "tests.drive.carla_pool_fakes.install",
        },
    )
    yield
    ray.shutdown()


def _write(root: Path, out: str, study: dict = STUDY) -> Path:
    path = root / f"{out}.yaml"
    path.write_text(yaml.safe_dump({**study, "out": out}))
    return path


@pytest.fixture(scope="module")
def both(tmp_path_factory, local_ray):
    """The micro study run locally (a pool of 2 workers) and on Ray (2 CPUs): the two output folders."""
    root = tmp_path_factory.mktemp("ray-study")
    # 2 local workers train with one thread each, as Ray's 1-CPU jobs do (thread counts change rounding).
    assert main(["study", str(_write(root, "local")), "--quiet", "--workers", "2"]) == 0
    assert main(["study", str(_write(root, "ray")), "--quiet", "--executor", "ray"]) == 0
    return root / "local", root / "ray"


def _tables(report: str) -> list[str]:
    return [line for line in report.splitlines() if line.startswith("|")]


def test_ray_study_equals_the_local_one(both):
    local, cluster = both
    episodes_local = pd.read_parquet(local / "episodes.parquet")
    episodes_ray = pd.read_parquet(cluster / "episodes.parquet")
    assert len(episodes_local) == 4  # 2 training seeds × 2 noise levels
    pd.testing.assert_frame_equal(episodes_local, episodes_ray)
    a, b = (json.loads((d / "study.json").read_text()) for d in both)
    for key in ("aggregate", "differences_interventions_per_km", "training"):
        assert a[key] == b[key]
    assert b["failures"] == {} and b["blocked"] == {}
    tables = _tables((local / "report.md").read_text())
    assert tables and tables == _tables((cluster / "report.md").read_text())
    for seed in (0, 1):  # per-episode metrics of every model, file by file
        m_local, m_ray = (
            json.loads((d / "held_out" / "eval" / "ncp-ltc" / f"seed-{seed}" / "metrics.json").read_text())
            for d in both
        )
        assert [e["metrics"] for e in m_local["episodes"]] == [e["metrics"] for e in m_ray["episodes"]]


@pytest.fixture
def ray_out(both):
    """The Ray study's folder, restored after the test (jobs' digests hold absolute paths, so a failure is
    injected into this very folder rather than into a copy)."""
    out = both[1]
    backup = out.with_name("ray-backup")
    shutil.copytree(out, backup)
    yield out
    shutil.rmtree(out)
    backup.rename(out)


def _rerun_with_failure(out: Path, key: str, times: int, monkeypatch) -> int:
    """Rerun the Ray study in `out` with job `key` undone (its DONE removed) and made to fail its first
    `times` attempts (-1: every attempt); returns the exit status."""
    kind, protocol, policy, seed = key.split("/")
    (out / protocol / kind / policy / seed / "DONE").unlink()  # the retry has real work to do
    (out / INJECT).write_text(json.dumps({"key": key, "times": times}))
    monkeypatch.setattr(runner, "run_job", flaky_run_job)
    return main(["study", str(out.with_suffix(".yaml")), "--quiet", "--executor", "ray"])


def test_a_job_failing_once_is_retried_and_the_study_completes(ray_out, monkeypatch):
    out, before = ray_out, json.loads((ray_out / "study.json").read_text())
    key = "eval/held_out/ncp-ltc/seed-1"
    assert _rerun_with_failure(out, key, 1, monkeypatch) == 0
    assert (out / "attempts-eval_held_out_ncp-ltc_seed-1").read_text() == "2"
    assert (out / "held_out" / "eval" / "ncp-ltc" / "seed-1" / "DONE").is_file()
    summary = json.loads((out / "study.json").read_text())
    assert summary["failures"] == {} and summary["aggregate"] == before["aggregate"]


def test_an_always_failing_job_is_named_in_the_report_and_the_exit_status(ray_out, monkeypatch, capsys):
    out, key = ray_out, "train/held_out/ncp-ltc/seed-0"
    assert _rerun_with_failure(out, key, -1, monkeypatch) == 1
    err = capsys.readouterr().err
    assert f"job {key} did not finish" in err and "injected failure" in err
    assert "(after 3 attempts)" in err  # the default 2 retries
    report = (out / "report.md").read_text()
    assert key in report and "eval/held_out/ncp-ltc/seed-0" in report  # its evaluation is blocked
    summary = json.loads((out / "study.json").read_text())
    assert set(summary["failures"]) == {key} and set(summary["blocked"]) == {"eval/held_out/ncp-ltc/seed-0"}
    # The other seed's jobs were done and are still in the tables.
    assert (out / "held_out" / "eval" / "ncp-ltc" / "seed-1" / "DONE").is_file()


def test_drive_eval_on_ray_equals_the_serial_run(local_ray, tmp_path):
    args = ["eval", "--policy", "expert", "--noise", "0,0.2", "--seeds", "0,1", "--max-steps", "15"]
    args.append("--quiet")
    assert main([*args, "--out", str(tmp_path / "serial")]) == 0
    assert main([*args, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    serial, cluster = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("serial", "ray"))
    assert [e["id"] for e in cluster["episodes"]] == [e["id"] for e in serial["episodes"]]
    assert [e["metrics"] for e in cluster["episodes"]] == [e["metrics"] for e in serial["episodes"]]
    assert cluster["aggregate"] == serial["aggregate"]
    assert _tables((tmp_path / "ray" / "report.md").read_text()) == _tables(
        (tmp_path / "serial" / "report.md").read_text()
    )


def test_drive_eval_on_carla_through_ray_holds_the_nodes_server(local_ray, tmp_path, monkeypatch):
    """Each CARLA episode reserves the node's `carla` resource, so with 2 CPUs the one server still never
    has two clients; the results equal the serial run's."""
    pytest.importorskip("carla")
    import sim.carla.connect
    from tests.drive import carla_pool_fakes as fakes

    server = fakes.LoopbackCarlaServer()
    monkeypatch.setattr(sim.carla.connect, "make_client", fakes.make_net_client)
    args = ["eval", "--sim", "carla", "--track", "oval", "--policy", "expert", "--noise", "0,0.2"]
    args += ["--seeds", "0,1", "--max-steps", "15", "--quiet", "--set", f"sim.port={server.port}"]
    try:
        assert main([*args, "--out", str(tmp_path / "serial")]) == 0
        serial_ticks = sorted(ticks for _, ticks in server.sessions)
        server.sessions.clear()
        assert main([*args, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    finally:
        server.close()
    assert len(server.sessions) == 4 and server.max_clients == 1 and server.open_clients == 0
    assert os.getpid() not in {pid for pid, _ in server.sessions}  # driven by Ray's workers
    assert sorted(ticks for _, ticks in server.sessions) == serial_ticks
    serial, cluster = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("serial", "ray"))
    assert [e["metrics"] for e in cluster["episodes"]] == [e["metrics"] for e in serial["episodes"]]


def test_a_launch_file_with_a_ray_executor_trains_its_policies_on_the_cluster(local_ray, tmp_path):
    launch = {
        "name": "ray-launch",
        "out": "out",
        "stages": ["record", "train", "eval"],
        "record": {"tracks": ["oval"], "episodes": 2, "minutes": 0.05},
        "train": {
            "config": str(ROOT / "launch" / "train_default.yaml"),
            "policies": ["ncp-ltc", "lstm"],
            "overrides": ["epochs=1", "batch=2", "data.window=4", "data.stride=4", "log_interval=1"],
        },
        "eval": {"track": "forest", "noise": [0.0], "seeds": [0], "laps": None, "max_steps": 5},
        "export": {"policy": "ncp-ltc"},
        "executor": {"kind": "ray", "artifacts": "ship"},  # on one node nothing travels, but all is packed
    }
    path = tmp_path / "launch.yaml"
    path.write_text(yaml.safe_dump(launch))
    assert main(["launch", str(path), "--quiet"]) == 0
    state = json.loads((tmp_path / "out" / "launch_state.json").read_text())
    for policy in ("ncp-ltc", "lstm"):
        assert (tmp_path / "out" / "train" / policy / "DONE").is_file()
        assert state["train"]["policies"][policy]["summary"]
    metrics = json.loads((tmp_path / "out" / "eval" / "metrics.json").read_text())
    assert len(metrics["episodes"]) == 2  # each trained policy, evaluated on the cluster
