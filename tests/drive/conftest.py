"""Fixtures shared by the drive tests: the fake CARLA server behind `sim.carla.connect.make_client`."""

from __future__ import annotations

import pytest

import sim.carla.connect
from sim.tracks.track_gen import make_track
from sim.tracks.xodr import track_to_xodr


@pytest.fixture
def fake_server(monkeypatch):
    """A fake CARLA server (tests/sim/fake_carla.py) with Town01 (the seed-3 road) loaded; every client
    the CLI makes connects to it."""
    pytest.importorskip("carla")
    from tests.sim.fake_carla import FakeClient, FakeServer

    server = FakeServer({"Town01": track_to_xodr(make_track("seed-3"))}, current="Town01")
    monkeypatch.setattr(
        sim.carla.connect, "make_client", lambda host, port, timeout_s: FakeClient(server, host, port)
    )
    return server
