"""A port that answers but is not a CARLA server: a clear error naming host:port, never a C++ abort."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sim.carla.connect import CarlaConnectionError, handshake

REPO = Path(__file__).resolve().parents[2]


def _serve(reply: bytes | None):
    """A TCP server on 127.0.0.1 answering every connection with `reply` (None: says nothing)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    stop = threading.Event()
    conns = []

    def run():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conns.append(conn)
            try:
                conn.recv(256)
                if reply is not None:
                    conn.sendall(reply)
            except OSError:
                pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def close():
        stop.set()
        thread.join()
        for conn in conns:
            conn.close()
        server.close()

    return server.getsockname()[1], close


@pytest.mark.parametrize(
    "reply",
    [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", b"\x94\x01\x00\xc0\x07", b"\x00" * 40],
)
def test_a_service_that_answers_garbage_is_named(reply):
    port, close = _serve(reply)
    try:
        started = time.monotonic()
        with pytest.raises(CarlaConnectionError, match=rf"127\.0\.0\.1:{port} answered, but not as a CARLA"):
            handshake("127.0.0.1", port, 2.0)
        assert time.monotonic() - started < 3.0
    finally:
        close()


def test_a_silent_port_times_out_naming_it():
    port, close = _serve(None)
    try:
        with pytest.raises(CarlaConnectionError, match=rf"127\.0\.0\.1:{port} within 0\.5 s \(time-out"):
            handshake("127.0.0.1", port, 0.5)
    finally:
        close()


def test_a_carla_like_reply_passes_the_handshake():
    port, close = _serve(b"\x94\x01\x00\xc0\xa60.9.16")
    try:
        assert handshake("127.0.0.1", port, 2.0) == "0.9.16"
    finally:
        close()


def test_drive_carla_check_on_a_wrong_service_fails_cleanly_not_with_134():
    pytest.importorskip("carla")
    port, close = _serve(b"SSH-2.0-OpenSSH_9.6\r\n")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "drive", "carla", "check", "--port", str(port), "--timeout", "2"],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        close()
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])  # check failed; not 134
    assert f"127.0.0.1:{port} answered, but not as a CARLA server" in done.stderr
    assert "Traceback" not in done.stderr
