"""validate: check everything in an episode, reading every chunk; the first problem raises RecordingError."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recordings.layout import TELEMETRY_DIR, RecordingError, part_name
from recordings.reader import Recording


@dataclass(frozen=True)
class ValidationReport:
    """What `validate` checked in one episode.

    Attributes:
        path: the episode directory.
        num_frames: committed frames T.
        num_chunks: chunks per stream that were read and decoded.
        complete: whether the writer closed the episode normally.
        streams: names of the array streams checked (frames first).
        decoded_bytes: bytes of array data decoded (all streams).
        duration_s: frames times the control period, s.
    """

    path: Path
    num_frames: int
    num_chunks: int
    complete: bool
    streams: tuple[str, ...]
    decoded_bytes: int
    duration_s: float


def validate(path: str | Path) -> ValidationReport:
    """Check one episode completely.

    Checks meta.json; every telemetry part (sequence, row counts, schema, page checksums, no nulls);
    `frame` and `timestamp_s` strictly increasing and timestamps finite; every stream's zarr.json
    against meta.json; and decodes every committed chunk of every stream (crc32c-checked).

    Raises:
        RecordingError: naming the file of the first problem found.
    """
    rec = Recording(path)
    _check_monotonic(rec, "frame")
    _check_monotonic(rec, "timestamp_s")
    rec.open_streams()
    streams = ("frames", *rec.array_names)
    decoded = 0
    for name in streams:
        stream = rec.stream(name)
        stored = stream.stored_frames
        # A killed writer may have stored one chunk past the last part; a closed one stores exactly T.
        allowed = rec.num_frames if rec.complete else rec.num_frames + rec.chunk_frames
        if stored > allowed:
            raise RecordingError(
                f"{stream.path / 'zarr.json'}: holds {stored} frames, more than the {rec.num_frames} "
                f"committed by the telemetry (complete={rec.complete})"
            )
        for index in range(rec.num_chunks):
            decoded += rec.chunk(name, index).nbytes
    return ValidationReport(
        path=rec.path,
        num_frames=rec.num_frames,
        num_chunks=rec.num_chunks,
        complete=rec.complete,
        streams=streams,
        decoded_bytes=decoded,
        duration_s=rec.duration_s,
    )


def _check_monotonic(rec: Recording, column: str) -> None:
    values = rec.telemetry[column]
    bad = np.flatnonzero(~np.isfinite(values)) if values.dtype.kind == "f" else np.zeros(0, np.int64)
    what = "is not finite"
    if not len(bad):
        bad = np.flatnonzero(np.diff(values) <= 0) + 1
        what = "does not increase"
    if len(bad):
        row = int(bad[0])
        part = rec.path / TELEMETRY_DIR / part_name(row // rec.chunk_frames)
        raise RecordingError(f"{part}: column {column!r} {what} at row {row} (value {values[row]!r})")
