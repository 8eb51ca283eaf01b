"""Recording: read an episode written by RecordingWriter, including one whose recorder was killed.

The committed frame count is the row count of the telemetry parts; frames and arrays are read only up
to it (a killed writer may have stored one more chunk of frames without its part). Every problem on disk
raises RecordingError naming the offending file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recordings.layout import META_FILE, TELEMETRY_DIR, RecordingError, list_parts, part_name
from recordings.meta import meta_arrays, meta_columns, read_meta
from recordings.schema import FRAMES_STREAM, ArraySpec, Column
from recordings.streams import Stream
from recordings.telemetry import count_rows, read_parts


class Recording:
    """One episode on disk, opened for reading. Telemetry is loaded at open; frames on demand.

    Args:
        path: the episode directory.

    Attributes:
        path: the episode directory.
        meta: the meta.json dict (simulator, track, condition, seed, control_period_s, image_shape,
            config, extra, columns, arrays, num_frames, complete, ...).
        columns: the telemetry columns (name, dtype, unit, doc), base then extra.
        num_frames: committed frames T (for a killed recorder: whole chunks whose part exists).
        telemetry: column name -> (T,) numpy array of the column's dtype.

    Raises:
        RecordingError: naming the file, when meta.json or a telemetry part is missing, truncated,
            corrupt or inconsistent (frames are checked when read; use `validate` to check everything).

    Example:
        >>> import tempfile
        >>> from recordings.synthetic import write_synthetic_episode
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     rec = Recording(write_synthetic_episode(f"{tmp}/ep", 20, image_shape=(8, 10, 3)))
        ...     rec.num_frames, rec.frames(4, 8).shape, rec.telemetry["speed_mps"].dtype.name
        (20, (4, 8, 10, 3), 'float32')
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise RecordingError(f"{self.path}: not an episode directory (missing)")
        meta_path = self.path / META_FILE
        self.meta: dict[str, Any] = read_meta(meta_path)
        try:
            self.columns: tuple[Column, ...] = meta_columns(self.meta)
            specs = meta_arrays(self.meta)
        except (KeyError, TypeError, ValueError) as exc:  # read_meta checked these; belt and braces
            raise RecordingError(f"{meta_path}: {exc}") from exc
        self.chunk_frames: int = int(self.meta["chunk_frames"])
        telemetry_dir = self.path / TELEMETRY_DIR
        if not telemetry_dir.is_dir():
            raise RecordingError(f"{telemetry_dir}: missing telemetry directory")
        if self.meta["complete"]:
            _check_part_set(telemetry_dir, meta_path, int(self.meta["num_frames"]), self.chunk_frames)
        fingerprints: dict[int, dict[str, int]] = {}
        parts = count_rows(telemetry_dir, self.chunk_frames, fingerprints)
        self.num_frames: int = sum(rows for _, rows in parts)
        if self.meta["complete"] and self.meta["num_frames"] != self.num_frames:
            raise RecordingError(
                f"{meta_path}: says {self.meta['num_frames']} frames but the telemetry parts in "
                f"{telemetry_dir} commit {self.num_frames} (a part is missing or extra)"
            )
        self.telemetry: dict[str, np.ndarray] = read_parts(parts, self.columns)
        self._specs: dict[str, ArraySpec] = {s.name: s for s in specs}
        self._streams = {
            name: Stream(self.path, spec, self.chunk_frames) for name, spec in self._specs.items()
        }
        for name, stream in self._streams.items():
            stream.fingerprints = {k: fp[name] for k, fp in fingerprints.items() if name in fp}

    @property
    def complete(self) -> bool:
        """Whether the writer closed the episode normally (False after a kill or an aborted drive)."""
        return bool(self.meta["complete"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, 3) of every frame."""
        return self._specs[FRAMES_STREAM].shape  # type: ignore[return-value]

    @property
    def array_names(self) -> tuple[str, ...]:
        """Names of the extra per-frame array streams (not including `frames`)."""
        return tuple(name for name in self._specs if name != FRAMES_STREAM)

    @property
    def num_chunks(self) -> int:
        """Committed chunks along T (the last may be partial)."""
        return -(-self.num_frames // self.chunk_frames)

    @property
    def duration_s(self) -> float:
        """Driving time covered: frames times the control period, s."""
        return self.num_frames * float(self.meta["control_period_s"])

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        return (
            f"Recording({str(self.path)!r}, frames={self.num_frames}, track={self.meta['track']!r}, "
            f"condition={self.meta['condition']!r}, complete={self.complete})"
        )

    def frames(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Camera frames `start` .. `stop` - 1, (n, H, W, 3) uint8 RGB.

        Raises:
            IndexError: the range is outside 0 .. num_frames.
            RecordingError: naming the chunk file that is missing or corrupt.
        """
        return self.array(FRAMES_STREAM, start, stop)

    def array(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames `start` .. `stop` - 1 of array stream `name`, (n, *shape) of its dtype.

        Raises:
            KeyError: no such stream.
            IndexError: the range is outside 0 .. num_frames.
            RecordingError: naming the chunk file that is missing or corrupt.
        """
        start, stop = self._range(start, stop)
        return self.stream(name).read(start, stop, self.num_frames)

    def chunk(self, name: str, index: int) -> np.ndarray:
        """The committed frames of chunk `index` of stream `name`, (<= chunk_frames, *shape).

        The unit a cache should hold: one decode, `chunk_frames` frames.
        """
        if not 0 <= index < self.num_chunks:
            raise IndexError(f"chunk {index} outside 0..{self.num_chunks - 1} of {self.path}")
        return self.stream(name).chunk(index, self.num_frames)

    def open_streams(self) -> None:
        """Open every array stream now, checking its zarr.json (reads no chunk).

        Raises:
            RecordingError: naming the zarr.json that is missing, corrupt or disagrees with meta.json.
        """
        for stream in self._streams.values():
            stream.open(self.num_frames)

    def to_pandas(self) -> Any:
        """The telemetry as a pandas DataFrame (needs pandas; the arrays are in `telemetry` without it)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError(
                "Recording.to_pandas needs pandas (pip install pandas); "
                "Recording.telemetry holds the same columns as numpy arrays"
            ) from exc
        return pd.DataFrame({c.name: self.telemetry[c.name] for c in self.columns})

    def stream(self, name: str) -> Stream:
        """The low-level accessor of array stream `name` (`frames` or an extra array)."""
        try:
            return self._streams[name]
        except KeyError:
            raise KeyError(
                f"{self.path}: no array stream {name!r}; streams: {sorted(self._streams)}"
            ) from None

    def _range(self, start: int, stop: int | None) -> tuple[int, int]:
        stop = self.num_frames if stop is None else stop
        if not (0 <= start <= stop <= self.num_frames):
            raise IndexError(f"frames {start}..{stop} outside 0..{self.num_frames} of {self.path}")
        return int(start), int(stop)


def _check_part_set(telemetry_dir: Path, meta_path: Path, num_frames: int, chunk_frames: int) -> None:
    """For a closed episode, name the first extra or missing telemetry part against meta.json's count."""
    expected = -(-num_frames // chunk_frames)
    present = {index for index, _ in list_parts(telemetry_dir)}
    extra = sorted(i for i in present if i >= expected)
    if extra:
        raise RecordingError(
            f"{telemetry_dir / part_name(extra[0])}: extra telemetry part ({meta_path} closes the episode "
            f"at {num_frames} frames, {expected} parts)"
        )
    missing = [i for i in range(expected) if i not in present]
    if missing:
        raise RecordingError(
            f"{telemetry_dir / part_name(missing[0])}: missing telemetry part ({meta_path} closes the "
            f"episode at {num_frames} frames, {expected} parts)"
        )


def open_recording(path: str | Path) -> Recording:
    """Open the episode at `path`; same as `Recording(path)`."""
    return Recording(path)
