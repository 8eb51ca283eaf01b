"""Connecting to a CARLA server, with an error that says what to do when there is none.

`connect(host, port, timeout_s)` fails within about `timeout_s` with a `CarlaConnectionError` naming the
address and how to start a server. A closed port fails at once (a TCP probe before the client: the carla
client itself would wait the whole timeout); a port that accepts but does not answer (a server still
booting, or not a CARLA server) fails when the client's RPC times out.

Before the carla client touches a port, `handshake` asks it for its version over CARLA's own RPC
(msgpack-rpc, the `version` call the client makes first) in plain Python: a service that answers
something else is refused with an error naming host:port, instead of the C++ client aborting the
process (exit 134) on a reply it cannot parse.

Tests replace `make_client` (the one factory of `carla.Client` objects) with a fake server layer.
"""

from __future__ import annotations

import socket
import time
import warnings
from dataclasses import dataclass
from typing import Any

from sim.carla.lazy_import import CARLA_VERSION, import_carla


class CarlaConnectionError(ConnectionError):
    """No CARLA server answered at the given address."""


def start_hint(port: int) -> str:
    """How to start a CARLA 0.9.16 server listening on `port`."""
    return (
        f"start one with `./CarlaUE4.sh -RenderOffScreen -carla-rpc-port={port}` in the CARLA "
        f"{CARLA_VERSION} release folder, or `docker run --privileged --gpus all --net=host "
        f"carlasim/carla:{CARLA_VERSION} bash ./CarlaUE4.sh -RenderOffScreen -carla-rpc-port={port}`; "
        "it needs a GPU and takes tens of seconds to boot"
    )


def make_client(host: str, port: int, timeout_s: float) -> Any:
    """A `carla.Client` for host:port with its RPC timeout set (connects lazily, on the first call).

    Raises:
        CarlaConnectionError: nothing listens on the port.
    """
    carla = import_carla()
    handshake(host, port, timeout_s)
    client = carla.Client(host, port)
    client.set_timeout(timeout_s)
    return client


_VERSION_REQUEST = b"\x94\x00\x00\xa7version\x90"
"""msgpack-rpc request [0 (request), 0 (msgid), "version", []]: what carla.Client sends first."""
_REPLY_PREFIX = b"\x94\x01\x00\xc0"
"""msgpack-rpc reply [1 (response), 0 (msgid), nil (no error), ...]: a CARLA server's answer starts so."""


def handshake(host: str, port: int, timeout_s: float) -> str:
    """Ask host:port for its CARLA version in plain Python; returns the version string.

    Raises:
        CarlaConnectionError: naming host:port, when nothing listens there (at once), nothing answers
            within `timeout_s`, or the answer is not a CARLA server's.
    """
    deadline = time.monotonic() + timeout_s
    try:  # the client would wait the whole timeout on a closed port; a TCP probe knows at once
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as err:
        raise CarlaConnectionError(
            f"no CARLA server at {host}:{port} ({err.strerror or err}); {start_hint(port)}"
        ) from None
    reply = b""
    with sock:
        try:
            sock.sendall(_VERSION_REQUEST)
            while len(reply) < 64 and not _complete_reply(reply):
                sock.settimeout(max(deadline - time.monotonic(), 1e-3))
                data = sock.recv(256)
                if not data:
                    break
                reply += data
                if not _REPLY_PREFIX.startswith(reply[:4]) and not reply.startswith(_REPLY_PREFIX):
                    break  # already not CARLA's answer
        except TimeoutError:
            if not reply:
                raise CarlaConnectionError(
                    f"no CARLA server answered at {host}:{port} within {timeout_s:g} s (time-out: it "
                    f"accepts connections but sent nothing; a server still booting, or not a CARLA "
                    f"server); {start_hint(port)}"
                ) from None
        except OSError as err:
            raise CarlaConnectionError(
                f"{host}:{port} dropped the connection ({err.strerror or err}); is it a CARLA server? "
                f"{start_hint(port)}"
            ) from None
    version = _complete_reply(reply)
    if version is None:
        raise CarlaConnectionError(
            f"{host}:{port} answered, but not as a CARLA server (its reply to a version request "
            f"began {reply[:24]!r}); check the host and port, or {start_hint(port)}"
        )
    return version


def _complete_reply(reply: bytes) -> str | None:
    """The version string of a whole msgpack-rpc reply to `_VERSION_REQUEST`, else None."""
    if not reply.startswith(_REPLY_PREFIX) or len(reply) < 5:
        return None
    kind, body = reply[4], reply[5:]
    if 0xA0 <= kind <= 0xBF:
        length, start = kind - 0xA0, 0
    elif kind == 0xD9 and body:
        length, start = body[0], 1
    else:
        return None
    text = body[start : start + length]
    return text.decode("utf-8", "replace") if len(text) == length else None


@dataclass(frozen=True)
class Connection:
    """A live connection: the client and what the server said about itself."""

    client: Any
    host: str
    port: int
    client_version: str
    server_version: str


def connect(host: str, port: int, timeout_s: float) -> Connection:
    """Connect and ask the server for its version.

    Args:
        host: server address.
        port: its RPC port.
        timeout_s: RPC timeout, s (also the bound on failing when no server answers).

    Raises:
        CarlaConnectionError: no server answered within `timeout_s`; names host, port and the fix.
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    started = time.monotonic()
    client = make_client(host, port, timeout_s)
    try:
        server_version = str(client.get_server_version())
    except RuntimeError as err:  # carla raises RuntimeError("time-out of ...ms while waiting ...")
        waited = time.monotonic() - started
        raise CarlaConnectionError(
            f"no CARLA server answered at {host}:{port} within {waited:.1f} s ({err}); {start_hint(port)}"
        ) from None
    client_version = str(client.get_client_version())
    if _release(client_version) != _release(server_version):
        warnings.warn(
            f"CARLA client {client_version} and server {server_version} differ: use the same release "
            f"(this project is built for {CARLA_VERSION})",
            stacklevel=2,
        )
    return Connection(client, host, port, client_version, server_version)


def _release(version: str) -> str:
    """'0.9.16' of '0.9.16-12-gabc' (git describe suffixes of source builds)."""
    return version.split("-")[0].strip()
