"""The command message every output sends: 8 bytes, little-endian, one CAN frame's payload.

    offset  type    field
    0       int16   curvature, 1e-4 1/m per count (left positive), saturated at ±3.2767 1/m
    2       uint8   flags: bit 0 VALID (drive this), bit 1 OVERRUN (the step missed its deadline: stop),
                    bit 2 STALL (no frame within the watchdog timeout: stop); other bits 0
    3       uint8   sequence counter, +1 per message of any kind, wraps 255 -> 0
    4       uint32  timestamp, ms since the runner started (monotonic clock), wraps after 49.7 days

On CAN it is a classic data frame with the 11-bit identifier `CAN_ID` (0x2D0) and DLC 8; on UDP one
datagram of these 8 bytes; on stdout one JSON line of the decoded fields plus the bytes in hex. A message
without VALID carries curvature 0 and tells the car to stop steering from the policy (hand over / brake).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

LAYOUT = struct.Struct("<hBBI")
"""int16 curvature, uint8 flags, uint8 sequence, uint32 timestamp_ms (8 bytes)."""
CAN_ID = 0x2D0
"""The 11-bit CAN identifier of the command frame."""
CURVATURE_LSB_1PM = 1e-4
"""Curvature per count, 1/m."""

VALID = 0x01
OVERRUN = 0x02
STALL = 0x04


@dataclass(frozen=True)
class CommandMessage:
    """One decoded command.

    Attributes:
        curvature_1pm: the command, 1/m (as sent: quantised to `CURVATURE_LSB_1PM`).
        flags: `VALID`, `OVERRUN`, `STALL` bits.
        sequence: 0..255.
        timestamp_ms: ms since the runner started, modulo 2**32.
    """

    curvature_1pm: float
    flags: int
    sequence: int
    timestamp_ms: int

    @property
    def valid(self) -> bool:
        return bool(self.flags & VALID)


def encode(curvature_1pm: float, flags: int, sequence: int, timestamp_ms: int) -> bytes:
    """The 8-byte payload; the curvature rounded to counts and saturated, the counters wrapped."""
    counts = max(-32768, min(32767, round(curvature_1pm / CURVATURE_LSB_1PM)))
    return LAYOUT.pack(counts, flags & 0xFF, sequence & 0xFF, timestamp_ms & 0xFFFFFFFF)


def decode(payload: bytes) -> CommandMessage:
    """The message in an 8-byte payload; ValueError for another length."""
    if len(payload) != LAYOUT.size:
        raise ValueError(f"a command message is {LAYOUT.size} bytes, got {len(payload)}")
    counts, flags, sequence, timestamp_ms = LAYOUT.unpack(payload)
    return CommandMessage(counts * CURVATURE_LSB_1PM, flags, sequence, timestamp_ms)
