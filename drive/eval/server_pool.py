"""CARLA server pools for evaluations: each worker holds exactly one server for its whole life.

A CARLA server takes one synchronous client: the one that ticks it. So `drive eval --sim carla --workers
N` needs N servers (`sim.servers: [host:port, ...]`), and each worker process claims one of them when it
starts (from a queue the parent fills with the pool) and drives every episode it is given on that server,
one after the other. Episodes are pure functions of (config, episode), and the servers are alike, so
which worker drove an episode does not change its result: a pool gives what the serial run gives.

The serial path (one worker, in this process) drives on the pool's first server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drive.eval.episode import EpisodeOutcome, run_job
from drive.eval.plan import EpisodeSpec, EvalConfig

_SERVER: tuple[str, int] | None = None  # in a worker: the server it holds (set by `claim_server`)


def servers_of(config: EvalConfig) -> list[tuple[str, int]]:
    """The (host, port) servers an evaluation on CARLA may use; [] for a simulator without servers."""
    if config.sim.backend != "carla":
        return []
    from sim.carla.config import server_pool

    return server_pool(config.sim.config)


def on_server(config: EvalConfig, server: tuple[str, int] | None) -> EvalConfig:
    """`config` driving on `server` (host, port); unchanged for None."""
    if server is None:
        return config
    host, port = server
    return dataclasses.replace(config, sim=config.sim.replace(host=host, port=port))


def claim_server(servers: Any, timeout_s: float = 30.0) -> None:
    """In a worker at start-up: take one server from the parent's queue (None: the simulator has none)."""
    global _SERVER
    if servers is not None:
        _SERVER = servers.get(timeout=timeout_s)


def held_server() -> tuple[str, int] | None:
    """The server this worker holds (None outside a pool worker, or without servers)."""
    return _SERVER


def run_on_held_server(
    config: EvalConfig, spec: EpisodeSpec, out_dir: str | Path, on_steps: Callable[[int], None] | None = None
) -> EpisodeOutcome:
    """`run_job` on the server this worker holds (what a pool worker runs for each episode)."""
    return run_job(on_server(config, _SERVER), spec, out_dir, on_steps)
