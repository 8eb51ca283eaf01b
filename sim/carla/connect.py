"""Connecting to a CARLA server, with an error that says what to do when there is none.

`connect(host, port, timeout_s)` fails within about `timeout_s` with a `CarlaConnectionError` naming the
address and how to start a server. A closed port fails at once (a TCP probe before the client: the carla
client itself would wait the whole timeout); a port that accepts but does not answer (a server still
booting, or not a CARLA server) fails when the client's RPC times out.

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
    try:  # the client would wait the whole timeout on a closed port; a TCP probe knows at once
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as err:
        raise CarlaConnectionError(
            f"no CARLA server at {host}:{port} ({err.strerror or err}); {start_hint(port)}"
        ) from None
    client = carla.Client(host, port)
    client.set_timeout(timeout_s)
    return client


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
