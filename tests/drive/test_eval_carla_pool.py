"""`drive eval --sim carla --workers 3` on a pool of three fake CARLA servers on loopback ports
(tests/drive/carla_pool_fakes.py): every episode ran on exactly one server, each worker process held one
server, no server ever had two clients at once, and the results equal the serial run's."""

from __future__ import annotations

import json
import os
from collections import defaultdict

import pytest
import torch

import drive.eval.evaluate
import sim.carla.connect
from drive.cli import main

pytest.importorskip("carla")
pytestmark = pytest.mark.carla

EPISODES = 6  # 3 noise levels × 2 seeds


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    from policies.checkpoint import save_checkpoint
    from policies.registry import build_policy

    torch.manual_seed(1)
    return str(save_checkpoint(tmp_path_factory.mktemp("ckpt") / "ncp-ltc.pt", build_policy("ncp-ltc")))


@pytest.fixture
def servers(monkeypatch):
    """Three loopback fake servers; every CARLA client, here and in the pool's workers, drives on them."""
    from tests.drive import carla_pool_fakes as fakes

    started = [fakes.LoopbackCarlaServer() for _ in range(3)]
    monkeypatch.setattr(sim.carla.connect, "make_client", fakes.make_net_client)
    monkeypatch.setattr(drive.eval.evaluate, "_init_worker", fakes.init_worker_with_net_fakes)
    yield started
    for server in started:
        server.close()


def _eval(checkpoint: str, out, servers, workers: int) -> dict:
    pool = json.dumps([s.address for s in servers])
    args = ["eval", "--sim", "carla", "--track", "oval", "--policy", checkpoint, "--noise", "0,0.1,0.2"]
    args += ["--seeds", "0,1", "--max-steps", "20", "--quiet", "--set", f"sim.servers={pool}"]
    assert main([*args, "--workers", str(workers), "--out", str(out)]) == 0
    return json.loads((out / "metrics.json").read_text())


def _sessions(servers) -> list[tuple[int, int, int]]:
    """(server port, client pid, ticks) of every finished session; clears the logs."""
    rows = [(s.port, pid, ticks) for s in servers for pid, ticks in s.sessions]
    for server in servers:
        server.sessions.clear()
    return rows


def test_three_workers_on_three_servers_equal_the_serial_run(servers, checkpoint, tmp_path):
    serial = _eval(checkpoint, tmp_path / "serial", servers, workers=1)
    serial_sessions = _sessions(servers)
    assert {(port, pid) for port, pid, _ in serial_sessions} == {(servers[0].port, os.getpid())}

    pooled = _eval(checkpoint, tmp_path / "pooled", servers, workers=3)
    sessions = _sessions(servers)
    # Every episode was one session on one server, with as many ticks as the serial run's.
    assert len(sessions) == len(serial_sessions) == EPISODES
    assert sorted(t for *_, t in sessions) == sorted(t for *_, t in serial_sessions)
    # Each worker held exactly one server, and no two workers shared one.
    ports_of: dict[int, set[int]] = defaultdict(set)
    for port, pid, _ in sessions:
        ports_of[pid].add(port)
    assert os.getpid() not in ports_of and 1 <= len(ports_of) <= 3
    assert all(len(ports) == 1 for ports in ports_of.values())
    assert len({next(iter(ports)) for ports in ports_of.values()}) == len(ports_of)
    # No server ever had two clients at once; each answered its workers' handshakes.
    assert all(s.max_clients == 1 and s.open_clients == 0 for s in servers)

    assert [e["id"] for e in pooled["episodes"]] == [e["id"] for e in serial["episodes"]]
    assert [e["metrics"] for e in pooled["episodes"]] == [e["metrics"] for e in serial["episodes"]]
    assert pooled["aggregate"] == serial["aggregate"]


def test_more_workers_than_servers_is_a_config_error(checkpoint, tmp_path, capsys):
    args = ["eval", "--sim", "carla", "--policy", checkpoint, "--workers", "2", "--out", str(tmp_path / "r")]
    assert main([*args, "--set", 'sim.servers=["127.0.0.1:2000"]']) == 2
    err = capsys.readouterr().err
    assert "workers 2 with sim 'carla' needs as many CARLA servers" in err and "got 1" in err
    assert main([*args, "--set", 'sim.servers=["127.0.0.1"]']) == 2
    assert "'127.0.0.1' is not host:port" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
