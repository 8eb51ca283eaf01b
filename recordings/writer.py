"""RecordingWriter: append frames and telemetry rows while driving; a killed recorder loses one chunk at most.

Rows, frames and extra arrays are buffered in memory and stored a whole chunk at a time: first every
array stream's chunk (zarr: grow, then write), then the chunk's telemetry part (temporary file + rename).
The part is the commit marker, so after a SIGKILL the reader sees every chunk whose part exists, intact,
and nothing of the chunk that was in flight. (Files are not fsync'ed: this survives a killed process,
not a power cut.)
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from recordings.layout import (
    META_FILE,
    PART_RE,
    TELEMETRY_DIR,
    ZARR_SUFFIX,
    atomic_write_bytes,
    to_json,
)
from recordings.meta import build_meta
from recordings.schema import ArraySpec, array_specs, check_value, telemetry_columns
from recordings.streams import Stream, default_decode_frames
from recordings.telemetry import write_part

DEFAULT_CHUNK_FRAMES = 64
"""Frames per chunk: 3.2 s at 20 Hz, ~3 MB of 78x200 frames; the most a killed recorder loses."""


class RecordingWriter:
    """Writes one episode directory; use as a context manager.

    Args:
        path: the episode directory to create (parents are created too). An existing non-empty
            directory is refused unless `overwrite=True`, and even then only if it looks like an episode.
        image_shape: (H, W, 3) of every frame.
        meta: simulator, track, control_period_s, and optionally condition, seed, config (the resolved
            config), extra (free-form); see `recordings.meta.build_meta`.
        chunk_frames: frames per chunk along T (storage, commit and loss unit).
        extra_columns: extra scalar telemetry columns, name -> numpy dtype (e.g. {"policy_curvature_1pm":
            "float32"}); units are taken from the name's suffix.
        extra_arrays: extra per-frame arrays, name -> (per-frame shape, dtype) (e.g. {"hidden_state":
            ((19,), "float32")}); each is stored as `<name>.zarr`, (T, *shape).
        overwrite: replace an existing episode at `path`.
        decode_frames: frames compressed together inside a chunk (the unit a random read decodes); must
            divide chunk_frames; default: its largest divisor up to 8 (see `recordings.streams`).

    Example:
        >>> import tempfile, numpy as np
        >>> from recordings.synthetic import telemetry_rows
        >>> meta = {"simulator": "embedded", "track": "oval", "control_period_s": 0.05}
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     with RecordingWriter(f"{tmp}/ep", image_shape=(4, 6, 3), meta=meta, chunk_frames=2) as w:
        ...         for row in telemetry_rows(3):
        ...             _ = w.append(np.zeros((4, 6, 3), np.uint8), row)
        ...     w.num_committed
        3
    """

    def __init__(
        self,
        path: str | Path,
        *,
        image_shape: tuple[int, int, int],
        meta: Mapping[str, Any],
        chunk_frames: int = DEFAULT_CHUNK_FRAMES,
        extra_columns: Mapping[str, Any] | None = None,
        extra_arrays: Mapping[str, tuple[Any, Any]] | None = None,
        overwrite: bool = False,
        decode_frames: int | None = None,
    ) -> None:
        if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, int) or chunk_frames < 1:
            raise ValueError(f"chunk_frames must be a positive int, got {chunk_frames!r}")
        decode_frames = default_decode_frames(chunk_frames) if decode_frames is None else decode_frames
        if (
            isinstance(decode_frames, bool)
            or not isinstance(decode_frames, int)
            or decode_frames < 1
            or chunk_frames % decode_frames
        ):
            raise ValueError(
                f"decode_frames must be a positive divisor of {chunk_frames}, got {decode_frames!r}"
            )
        self.path = Path(path)
        self.chunk_frames = chunk_frames
        self.columns = telemetry_columns(extra_columns)
        self.arrays: tuple[ArraySpec, ...] = array_specs(image_shape, extra_arrays)
        self.image_shape = self.arrays[0].shape
        self._meta = build_meta(meta, columns=self.columns, arrays=self.arrays, chunk_frames=chunk_frames)

        _prepare_directory(self.path, overwrite)
        (self.path / TELEMETRY_DIR).mkdir()
        atomic_write_bytes(self.path / META_FILE, to_json(self._meta).encode())
        self._streams = [Stream.create(self.path, spec, chunk_frames, decode_frames) for spec in self.arrays]

        self._array_buffers = {s.name: np.empty((chunk_frames, *s.shape), s.dtype) for s in self.arrays}
        self._column_buffers = {c.name: np.empty(chunk_frames, c.dtype) for c in self.columns}
        self._fill = 0
        self._chunk_index = 0
        self._committed = 0
        self._last_frame: int | None = None
        self._last_timestamp_s: float | None = None
        self._closed = False
        self._failed = False

    @property
    def num_frames(self) -> int:
        """Frames appended so far (committed or buffered)."""
        return self._committed + self._fill

    @property
    def num_committed(self) -> int:
        """Frames stored on disk so far (whole chunks until `close`)."""
        return self._committed

    @property
    def closed(self) -> bool:
        """Whether `close` has run."""
        return self._closed

    def append(
        self, image_u8: np.ndarray, row: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
    ) -> int:
        """Add one frame: its image, telemetry row and (if declared) extra arrays.

        Everything is checked before anything is buffered, so a rejected frame leaves no trace.

        Args:
            image_u8: (H, W, 3) uint8 RGB, the declared image shape.
            row: exactly the declared columns (base + extra) -> scalar values; `frame` and `timestamp_s`
                must increase strictly from frame to frame.
            arrays: exactly the declared extra arrays -> (per-frame shape) arrays; floats are cast to a
                float stream's dtype, other dtypes must cast safely.

        Returns:
            The index of the frame within the episode.

        Raises:
            ValueError: naming the column, array or image that is missing, unknown or of the wrong
                shape, dtype or value.
            RuntimeError: the writer is closed or a previous chunk failed to store.
        """
        if self._closed or self._failed:
            raise RuntimeError(f"{self.path}: writer is {'closed' if self._closed else 'broken'}")
        _check_image(image_u8, self.image_shape)
        values = self._check_row(row)
        extra = self._check_arrays(arrays)

        slot = self._fill
        np.copyto(self._array_buffers[self.arrays[0].name][slot], image_u8)
        for name, value in extra.items():
            self._array_buffers[name][slot] = value
        for name, value in values.items():
            self._column_buffers[name][slot] = value
        self._last_frame = int(values["frame"])
        self._last_timestamp_s = float(values["timestamp_s"])
        self._fill += 1
        index = self.num_frames - 1
        if self._fill == self.chunk_frames:
            self._flush()
        return index

    def close(self) -> None:
        """Store the partial last chunk and mark the episode complete in meta.json. Safe to call twice."""
        self._finish(aborted=None)

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.close()
            return
        # Keep what was recorded (it is valid data) but say the drive did not finish.
        try:
            self._finish(aborted=f"{exc_type.__name__}: {exc}")
        except Exception as finish_exc:  # the original exception matters more
            warnings.warn(f"{self.path}: could not finish aborted recording: {finish_exc}", stacklevel=2)

    def _finish(self, aborted: str | None) -> None:
        if self._closed:
            return
        if self._fill and not self._failed:
            self._flush()
        self._closed = True
        meta = dict(self._meta)
        meta["num_frames"] = self._committed
        meta["complete"] = aborted is None and not self._failed
        meta["closed_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if aborted is not None:
            meta["aborted"] = aborted
        atomic_write_bytes(self.path / META_FILE, to_json(meta).encode())

    def _flush(self) -> None:
        """Store the buffered chunk: arrays first, then the telemetry part that commits them."""
        n = self._fill
        try:
            fingerprints = {}
            for stream in self._streams:
                stream.write_chunk(self._chunk_index, self._array_buffers[stream.spec.name][:n])
                fingerprints[stream.spec.name] = stream.fingerprint(self._chunk_index)
            write_part(
                self.path / TELEMETRY_DIR,
                self._chunk_index,
                self.columns,
                {name: buf[:n] for name, buf in self._column_buffers.items()},
                fingerprints,
            )
        except BaseException:
            self._failed = True  # the on-disk chunk is uncommitted; refuse to write past it
            raise
        self._chunk_index += 1
        self._committed += n
        self._fill = 0

    def _check_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(row, Mapping):
            raise ValueError(f"row must be a dict of column -> value, got {type(row).__name__}")
        names = [c.name for c in self.columns]
        for name in names:
            if name not in row:
                raise ValueError(f"row: missing column {name!r}")
        for name in row:
            if name not in self._column_buffers:
                raise ValueError(f"row: unknown column {name!r} (declare it in extra_columns)")
        for column in self.columns:
            check_value(column, row[column.name])
        frame, timestamp_s = int(row["frame"]), float(row["timestamp_s"])
        if not np.isfinite(timestamp_s):
            raise ValueError(f"row: column 'timestamp_s' must be finite, got {timestamp_s}")
        if self._last_frame is not None and frame <= self._last_frame:
            raise ValueError(f"row: column 'frame' must increase: {frame} after {self._last_frame}")
        if self._last_timestamp_s is not None and timestamp_s <= self._last_timestamp_s:
            raise ValueError(
                f"row: column 'timestamp_s' must increase: {timestamp_s} after {self._last_timestamp_s}"
            )
        return {name: row[name] for name in names}

    def _check_arrays(self, arrays: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        declared = {s.name: s for s in self.arrays[1:]}
        given = dict(arrays or {})
        for name in declared:
            if name not in given:
                raise ValueError(f"arrays: missing array {name!r}")
        for name in given:
            if name not in declared:
                raise ValueError(f"arrays: unknown array {name!r} (declare it in extra_arrays)")
        checked = {}
        for name, spec in declared.items():
            value = np.asarray(given[name])
            dtype = np.dtype(spec.dtype)
            castable = value.dtype == dtype or np.can_cast(value.dtype, dtype, "safe")
            if dtype.kind == "f" and value.dtype.kind in "fiu":
                castable = True  # e.g. float64 activations stored as float32
            if value.shape != spec.shape or not castable:
                raise ValueError(
                    f"array {name!r}: expected {spec.dtype} {spec.shape}, got {value.dtype} {value.shape}"
                )
            checked[name] = value
        return checked


def _check_image(image: Any, shape: tuple[int, ...]) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != shape:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image: expected uint8 array of shape {shape}, got {got}")


def foreign_files(path: Path) -> list[str]:
    """Paths (relative to the episode `path`) of everything in it that no RecordingWriter writes.

    A writer writes `meta.json` (and its `.tmp`), `telemetry/part-NNNNN.parquet` (and `.tmp` files), and
    `<name>.zarr/zarr.json` plus chunk files under `<name>.zarr/c/` with all-digit path components.
    """
    foreign = []
    for entry in sorted(path.rglob("*")):
        parts = entry.relative_to(path).parts
        top = parts[0]
        if top in (META_FILE, f".{META_FILE}.tmp") and len(parts) == 1 and entry.is_file():
            continue
        if top == TELEMETRY_DIR and (
            len(parts) == 1 or (len(parts) == 2 and (PART_RE.match(parts[1]) or parts[1].endswith(".tmp")))
        ):
            continue
        if top.endswith(ZARR_SUFFIX) and (
            len(parts) == 1
            or parts[1:] == ("zarr.json",)
            or (parts[1] == "c" and all(p.isdigit() for p in parts[2:]))
        ):
            continue
        foreign.append("/".join(parts))
    return foreign


def remove_episode(path: Path) -> None:
    """Delete the episode directory `path`, refusing (FileExistsError naming the file) if it holds
    anything a RecordingWriter did not write there: a user's file inside an episode survives."""
    foreign = foreign_files(path)
    if foreign:
        raise FileExistsError(
            f"{path}: holds {foreign[0]!r}, which no recorder wrote; refusing to delete the episode "
            "(move that file out, or delete the episode yourself)"
        )
    shutil.rmtree(path)


def _prepare_directory(path: Path, overwrite: bool) -> None:
    """Make `path` an empty directory, refusing to destroy anything that is not an old episode."""
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path}: exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{path}: already holds a recording; pass overwrite=True to replace it")
        remove_episode(path)
    path.mkdir(parents=True, exist_ok=True)
