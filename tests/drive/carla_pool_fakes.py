"""Several fake CARLA servers on loopback ports, reachable from other processes (the eval pool's workers).

`LoopbackCarlaServer` listens on 127.0.0.1 in a thread of the test process. It answers CARLA's version
request as a 0.9.16 server does, so the backend's real `handshake` reaches it over TCP, and it keeps the log
of client sessions: a session is the time a client holds the server in synchronous mode (from the
`apply_settings` that turns it on to the one that turns it off), announced by `NetFakeClient` on a
connection of its own. So the server knows, across processes, who drove on it and whether two clients ever
held it at once.

`NetFakeClient` is `sim.carla.connect.make_client`'s replacement in every process (`install`): it shakes
hands with the loopback server of its port, then drives the in-process fake world of tests/sim/fake_carla.py
(a fresh server state per client: the fake stamps the frame id into every image, which a real camera does
not, so a world reused across episodes would make an episode's images depend on the episodes before it).
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

import sim.carla.connect
from sim.carla.connect import handshake
from sim.tracks.track_gen import make_track
from sim.tracks.xodr import track_to_xodr

VERSION_REPLY = b"\x94\x01\x00\xc0\xa60.9.16"
"""msgpack-rpc [1, 0, nil, "0.9.16"]: a CARLA 0.9.16 server's answer to the version request."""


class LoopbackCarlaServer:
    """A listening socket on 127.0.0.1 (a free port) that answers version requests and logs sessions.

    Attributes:
        port: the port it listens on.
        handshakes: version requests answered.
        sessions: (pid, ticks) of every finished session.
        max_clients: the most sessions ever open at once (1 when no two clients overlapped).
    """

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.handshakes = 0
        self.sessions: list[tuple[int, int]] = []
        self.open_clients = 0
        self.max_clients = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as stream:
            first = stream.read(1)
            if first == b"\x94":  # a msgpack-rpc request: the version handshake
                conn.sendall(VERSION_REPLY)
                with self._lock:
                    self.handshakes += 1
                return
            line = (first + stream.readline()).decode().split()
            if line[:1] != ["open"]:
                return
            with self._lock:
                self.open_clients += 1
                self.max_clients = max(self.max_clients, self.open_clients)
            closing = stream.readline().decode().split()  # "close <ticks>", or EOF if the client died
            with self._lock:
                self.open_clients -= 1
                if closing[:1] == ["close"]:
                    self.sessions.append((int(line[1]), int(closing[1])))


class _Session:
    """A client's hold on a loopback server while its world is in synchronous mode."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.conn: socket.socket | None = None
        self.ticks = 0

    def sync(self, on: bool) -> None:
        if on and self.conn is None:
            self.conn = socket.create_connection(self.address, timeout=10.0)
            self.conn.sendall(f"open {os.getpid()}\n".encode())
            self.ticks = 0
        elif not on and self.conn is not None:
            self.conn.sendall(f"close {self.ticks}\n".encode())
            self.conn.close()
            self.conn = None


def _watched(world: Any, session: _Session) -> Any:
    """`world` with its settings and ticks reported to `session` (once per world)."""
    if getattr(world, "_session", None) is session:
        return world
    apply_settings, tick = world.apply_settings, world.tick

    def apply(settings: Any) -> int:
        session.sync(bool(settings.synchronous_mode))
        return int(apply_settings(settings))

    def counted_tick(seconds: float = 10.0) -> int:
        session.ticks += 1
        return int(tick(seconds))

    world.apply_settings, world.tick, world._session = apply, counted_tick, session
    return world


def make_net_client(host: str, port: int, timeout_s: float) -> Any:
    """`make_client` against the loopback server at host:port (module docstring)."""
    from tests.sim.fake_carla import FakeClient, FakeServer

    handshake(host, port, timeout_s)  # the real TCP handshake: fails if nothing listens there
    server = FakeServer({"Town01": track_to_xodr(make_track("seed-3"))}, current="Town01")
    session = _Session(host, port)

    class NetFakeClient(FakeClient):
        def get_world(self) -> Any:
            return _watched(super().get_world(), session)

        def load_world(self, name: str, reset_settings: bool = True) -> Any:
            return _watched(super().load_world(name, reset_settings), session)

        def generate_opendrive_world(
            self, xodr: str, parameters: Any = None, reset_settings: bool = True
        ) -> Any:
            return _watched(super().generate_opendrive_world(xodr, parameters, reset_settings), session)

    return NetFakeClient(server, host, port)


def install() -> None:
    """Make every CARLA client of this process a `NetFakeClient`."""
    sim.carla.connect.make_client = make_net_client


def init_worker_with_net_fakes(*args: Any) -> None:
    """The eval pool's worker initializer plus `install`: the test puts it in the parent's place of
    `drive.eval.evaluate._init_worker`; in the (freshly spawned) worker that name is the real one."""
    import drive.eval.evaluate

    install()
    drive.eval.evaluate._init_worker(*args)
