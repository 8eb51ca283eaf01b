"""No server: the error comes within timeout + 1 s and names host, port and how to start a server.

These use the real `carla.Client` against local ports: one that nothing listens on, and one that accepts
connections but never answers (a server still booting, or not CARLA at all).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

import sim.carla.connect
from sim.carla.connect import CarlaConnectionError, connect

carla = pytest.importorskip("carla")
pytestmark = pytest.mark.carla

TIMEOUT_S = 1.0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_port():
    """A port that accepts TCP connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def _assert_helpful(message: str, port: int) -> None:
    assert f"127.0.0.1:{port}" in message
    assert f"./CarlaUE4.sh -RenderOffScreen -carla-rpc-port={port}" in message
    assert "carlasim/carla:0.9.16" in message


def test_closed_port_fails_at_once_with_the_fix():
    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(CarlaConnectionError) as err:
        connect("127.0.0.1", port, TIMEOUT_S)
    assert time.monotonic() - started < TIMEOUT_S + 1.0
    _assert_helpful(str(err.value), port)


def test_a_port_that_never_answers_fails_after_the_timeout(silent_port):
    started = time.monotonic()
    with pytest.raises(CarlaConnectionError) as err:
        connect("127.0.0.1", silent_port, TIMEOUT_S)
    waited = time.monotonic() - started
    assert TIMEOUT_S - 0.1 < waited < TIMEOUT_S + 1.0  # the real client's RPC time-out, no longer
    _assert_helpful(str(err.value), silent_port)
    assert "time-out" in str(err.value)


def test_the_simulator_fails_the_same_way(silent_port):
    from sim.carla.config import CarlaConfig
    from sim.registry import make_simulator

    started = time.monotonic()
    with pytest.raises(CarlaConnectionError, match=f"127.0.0.1:{silent_port}"):
        make_simulator("carla", CarlaConfig(port=silent_port, timeout_s=TIMEOUT_S))
    assert time.monotonic() - started < TIMEOUT_S + 1.0


def test_a_version_mismatch_is_a_warning(monkeypatch):
    class OldServer:
        def get_server_version(self):
            return "0.9.15"

        def get_client_version(self):
            return "0.9.16"

    monkeypatch.setattr(sim.carla.connect, "make_client", lambda host, port, timeout_s: OldServer())
    with pytest.warns(UserWarning, match="client 0.9.16 and server 0.9.15 differ"):
        conn = connect("127.0.0.1", 2000, TIMEOUT_S)
    assert (conn.client_version, conn.server_version) == ("0.9.16", "0.9.15")
    with pytest.raises(ValueError, match="timeout_s must be > 0"):
        connect("127.0.0.1", 2000, 0.0)
