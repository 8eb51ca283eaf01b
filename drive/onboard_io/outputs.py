"""Where the command messages go: `stdout`, `udp:HOST:PORT` or `can:CHANNEL` (`open_output`).

Each output takes the 8-byte payload of `messages` and sends it; python-can is imported only for CAN.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any, Protocol, TextIO

from drive.onboard_io.messages import CAN_ID, decode


class Output(Protocol):
    def send(self, payload: bytes) -> None: ...

    def close(self) -> None: ...


class StdoutOutput:
    """One JSON line per message: the decoded fields and the payload in hex."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def send(self, payload: bytes) -> None:
        m = decode(payload)
        line = {
            "curvature_1pm": round(m.curvature_1pm, 4),
            "flags": m.flags,
            "valid": m.valid,
            "sequence": m.sequence,
            "timestamp_ms": m.timestamp_ms,
            "hex": payload.hex(),
        }
        self.stream.write(json.dumps(line) + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class UdpOutput:
    """One datagram per message to (host, port)."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, int(port))
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, payload: bytes) -> None:
        self._socket.sendto(payload, self.address)

    def close(self) -> None:
        self._socket.close()


class CanOutput:
    """One classic CAN frame (identifier `CAN_ID`, DLC 8) per message, through python-can.

    Args:
        channel: the bus channel (e.g. `can0`, `vcan0`; any name with the `virtual` interface).
        interface: python-can interface (`socketcan` on Linux, `virtual` for tests, ...).

    Raises:
        ImportError: python-can is not installed (names the extra).
        ValueError: the bus cannot be opened (one line naming the channel).
    """

    def __init__(self, channel: str, interface: str = "socketcan") -> None:
        try:
            import can
        except ImportError:
            raise ImportError("CAN output needs python-can: pip install -e '.[car]'") from None
        self._can: Any = can
        try:
            self.bus = can.Bus(interface=interface, channel=channel)
        except (can.CanError, OSError, ValueError) as exc:  # no such device, interface, permission
            message = f"--output can:{channel}: python-can cannot open it ({interface}): {exc}"
            raise ValueError(message) from None

    def send(self, payload: bytes) -> None:
        self.bus.send(self._can.Message(arbitration_id=CAN_ID, data=payload, is_extended_id=False))

    def close(self) -> None:
        self.bus.shutdown()


def open_output(spec: str, can_interface: str = "socketcan") -> Output:
    """`stdout`, `udp:HOST:PORT` or `can:CHANNEL` -> the output; ValueError naming a malformed spec."""
    kind, _, rest = spec.partition(":")
    if spec == "stdout":
        return StdoutOutput()
    if kind == "udp":
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--output {spec!r}: expected udp:HOST:PORT with a port in 1..65535")
        return UdpOutput(host, int(port))
    if kind == "can" and rest:
        return CanOutput(rest, can_interface)
    raise ValueError(f"--output {spec!r}: expected stdout, udp:HOST:PORT or can:CHANNEL")
