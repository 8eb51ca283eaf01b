"""One per-frame array stream of an episode (`frames.zarr`, `hidden_state.zarr`, ...) as a zarr v3 array.

Only the time axis is split. Each file holds `chunk_frames` frames (the storage, commit and loss unit);
inside it, frames are compressed in groups of `decode_frames` (zarr v3 sharding: a shard of
`chunk_frames` frames made of inner chunks of `decode_frames` frames), so a 16-frame window decodes
16-24 frames instead of one or two whole 64-frame chunks: about twice the random-window read speed.
When `decode_frames == chunk_frames` the array is plainly chunked.

Every inner chunk is zstd-compressed and closed by a crc32c checksum, and so is each shard's index, so a
flipped or truncated file fails to decode instead of returning wrong pixels. Zarr's local store writes
every file (chunks and `zarr.json`) through a temporary file and a rename, so a killed writer never
leaves a torn chunk behind.

Checksums prove a file is intact, not that it sits at the right place: two chunk files swapped (or one
copied over another) would each decode fine. So every chunk has a fingerprint, cheap to read: the crc32
of its shard index and of the crc32c that closes each inner chunk (for an unsharded file, of its closing
crc32c), a function of its content. The writer stores it in the chunk's telemetry part, and a reader
compares the file's fingerprint with that record the first time it touches the chunk.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ShardingCodec, ZstdCodec
from zarr.core.array_spec import ArrayConfigParams
from zarr.core.metadata import ArrayV3Metadata

from recordings.layout import ZARR_META_FILE, RecordingError, chunk_file, stream_dir
from recordings.schema import ArraySpec

ZSTD_LEVEL = 3
"""zstd level of every chunk: ~100 MB/s on one core for camera frames, far above a 20 Hz recorder."""
MAX_DECODE_FRAMES = 8
"""Default decode group: the largest divisor of chunk_frames up to this (8 frames at 78x200: 375 kB)."""
_WRITE_EMPTY_CHUNKS: ArrayConfigParams = {"order": "C", "write_empty_chunks": True}
"""Chunks equal to the fill value must still be written: a missing chunk file means damage."""


def default_decode_frames(chunk_frames: int) -> int:
    """The largest divisor of `chunk_frames` not above MAX_DECODE_FRAMES."""
    return max(d for d in range(1, min(chunk_frames, MAX_DECODE_FRAMES) + 1) if chunk_frames % d == 0)


class Stream:
    """Access to one stream's zarr array, opened lazily (so the object pickles into DataLoader workers).

    Args:
        episode: the episode directory.
        spec: the stream's name, per-frame shape and dtype.
        chunk_frames: frames per chunk along T.
    """

    def __init__(self, episode: Path, spec: ArraySpec, chunk_frames: int) -> None:
        self.episode = Path(episode)
        self.spec = spec
        self.chunk_frames = int(chunk_frames)
        self._array: Any = None
        self._present: set[int] = set()  # chunk indices whose file is known to exist (and fit)
        self._inner = 1  # inner (decode) chunks per file; set by `create` and `open`
        self.fingerprints: dict[int, int] = {}
        """Chunk index -> fingerprint its telemetry part recorded (empty for older recordings)."""

    @property
    def path(self) -> Path:
        """The stream's zarr directory."""
        return stream_dir(self.episode, self.spec.name)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_array"] = None  # zarr handles are reopened in the process that uses them
        state["_present"] = set()
        return state

    @property
    def stored_frames(self) -> int:
        """Length of the zarr array along T (may exceed the committed frames after a kill)."""
        if self._array is None:
            raise RuntimeError(f"{self.path}: stream is not open")
        return int(self._array.shape[0])

    @classmethod
    def create(cls, episode: Path, spec: ArraySpec, chunk_frames: int, decode_frames: int) -> Stream:
        """Create the empty (0, *shape) array on disk and return a stream ready for `write_chunk`.

        Args:
            episode: the episode directory.
            spec: the stream's name, per-frame shape and dtype.
            chunk_frames: frames per file.
            decode_frames: frames compressed together; must divide `chunk_frames`.
        """
        if chunk_frames % decode_frames:
            raise ValueError(f"decode_frames {decode_frames} must divide chunk_frames {chunk_frames}")
        stream = cls(episode, spec, chunk_frames)
        stream._inner = chunk_frames // decode_frames
        file_shape = (chunk_frames, *spec.shape)
        sharded = decode_frames < chunk_frames
        stream._array = zarr.create_array(
            store=str(stream.path),
            shape=(0, *spec.shape),
            chunks=(decode_frames, *spec.shape) if sharded else file_shape,
            shards=file_shape if sharded else None,
            dtype=spec.dtype,
            compressors=(ZstdCodec(level=ZSTD_LEVEL), Crc32cCodec()),
            fill_value=0,
            dimension_names=("frame", *(f"dim_{i}" for i in range(1, len(spec.shape) + 1))),
            config=_WRITE_EMPTY_CHUNKS,
            zarr_format=3,
        )
        return stream

    def write_chunk(self, index: int, data: np.ndarray) -> None:
        """Grow the array to hold chunk `index` and store `data` ((n, *shape), n <= chunk_frames) in it."""
        start = index * self.chunk_frames
        stop = start + len(data)
        self._array.resize((stop, *self.spec.shape))
        self._array[start:stop] = data

    def open(self, min_frames: int) -> None:
        """Open for reading and check the array's metadata against the spec.

        Raises:
            RecordingError: naming `zarr.json`, when it is missing, corrupt, or disagrees with the spec
                (dtype, per-frame shape, chunking), or holds fewer than `min_frames` frames.
        """
        meta_path = self.path / ZARR_META_FILE
        if not meta_path.is_file():
            raise RecordingError(f"{meta_path}: missing (stream {self.spec.name!r})")
        try:
            array = zarr.open_array(store=str(self.path), mode="r", zarr_format=3)
            shape, dtype = tuple(array.shape), np.dtype(array.dtype)
            chunks = tuple(array.shards or array.chunks)  # the per-file shape
            ndim = 1 + len(self.spec.shape)
            metadata = array.metadata
            if not isinstance(metadata, ArrayV3Metadata):  # zarr_format=3 above; a v2 file fails to open
                raise TypeError(f"zarr format {metadata.zarr_format}, expected 3")
            key = metadata.chunk_key_encoding.encode_chunk_key((1,) + (0,) * (ndim - 1))
            checksummed = _checksummed(metadata.codecs)
        except Exception as exc:  # zarr raises many types for a damaged zarr.json
            raise RecordingError(f"{meta_path}: cannot open zarr array: {type(exc).__name__}: {exc}") from exc
        expected_key = chunk_file(self.episode, self.spec.name, ndim, 1).relative_to(self.path).as_posix()
        if key != expected_key or not checksummed:
            # Another key layout would make zarr read missing chunks as zeros; no checksum hides damage.
            raise RecordingError(f"{meta_path}: chunk keys or codecs differ from the recording format")
        expected_chunks = (self.chunk_frames, *self.spec.shape)
        if dtype.name != self.spec.dtype or shape[1:] != self.spec.shape or chunks != expected_chunks:
            raise RecordingError(
                f"{meta_path}: expected {self.spec.dtype} (T, {', '.join(map(str, self.spec.shape))}) "
                f"in chunks {expected_chunks}, found {dtype.name} {shape} in chunks {chunks}"
            )
        if shape[0] < min_frames:
            raise RecordingError(
                f"{meta_path}: holds {shape[0]} frames but the telemetry commits {min_frames}"
            )
        self._array = array
        self._inner = chunks[0] // tuple(array.chunks)[0] if array.shards else 1

    def fingerprint(self, index: int) -> int:
        """The fingerprint of chunk file `index` (see the module docstring): a few small reads.

        Raises:
            RecordingError: naming the file, when it is missing or too short to hold its index.
        """
        path = chunk_file(self.episode, self.spec.name, 1 + len(self.spec.shape), index)
        try:
            with open(path, "rb") as f:
                if self._inner == 1:
                    f.seek(-4, 2)
                    return zlib.crc32(f.read(4))
                index_bytes = 16 * self._inner + 4  # (offset, nbytes) uint64 pairs, then their crc32c
                f.seek(-index_bytes, 2)
                shard_index = f.read(index_bytes)
                pieces = [shard_index]
                for offset, nbytes in np.frombuffer(shard_index[:-4], "<u8").reshape(-1, 2).tolist():
                    if offset != 2**64 - 1:  # an inner chunk that exists: its closing crc32c
                        f.seek(offset + nbytes - 4)
                        pieces.append(f.read(4))
                return zlib.crc32(b"".join(pieces))
        except (OSError, ValueError) as exc:  # ValueError: a damaged index points before the file
            raise RecordingError(f"{path}: chunk {index} unreadable or truncated: {exc}") from None

    def read(self, start: int, stop: int, num_frames: int) -> np.ndarray:
        """Frames `start` .. `stop` - 1 of the stream, (stop - start, *shape), of `num_frames` committed.

        Raises:
            RecordingError: naming the chunk file that is missing, truncated or corrupt.
        """
        if self._array is None:
            self.open(num_frames)
        if stop <= start:
            return np.zeros((0, *self.spec.shape), self.spec.dtype)
        first, last = start // self.chunk_frames, (stop - 1) // self.chunk_frames
        self._check_present(first, last)
        try:
            frames: np.ndarray = self._array[start:stop]
            return frames
        except Exception as exc:
            raise self._locate_damage(first, last, num_frames, exc) from exc

    def chunk(self, index: int, num_frames: int) -> np.ndarray:
        """The committed frames of chunk `index`, (<= chunk_frames, *shape)."""
        start = index * self.chunk_frames
        return self.read(start, min(start + self.chunk_frames, num_frames), num_frames)

    def _check_present(self, first: int, last: int) -> None:
        # zarr reads a missing (or, for a whole shard, empty) file as fill values: that must be an error.
        for index in range(first, last + 1):
            if index not in self._present:
                path = chunk_file(self.episode, self.spec.name, 1 + len(self.spec.shape), index)
                try:
                    size = path.stat().st_size
                except OSError:
                    raise RecordingError(
                        f"{path}: missing chunk {index} of stream {self.spec.name!r}"
                    ) from None
                if size == 0:
                    raise RecordingError(f"{path}: empty chunk file (truncated)")
                expected = self.fingerprints.get(index)
                if expected is not None and self.fingerprint(index) != expected:
                    raise RecordingError(
                        f"{path}: chunk {index} of stream {self.spec.name!r} is not the one its "
                        f"telemetry part committed (chunk files swapped, copied or replaced)"
                    )
                self._present.add(index)

    def _locate_damage(self, first: int, last: int, num_frames: int, exc: Exception) -> RecordingError:
        """Read the chunks one by one to name the file that fails."""
        for index in range(first, last + 1):
            start = index * self.chunk_frames
            try:
                self._array[start : min(start + self.chunk_frames, num_frames)]
            except Exception as chunk_exc:
                path = chunk_file(self.episode, self.spec.name, 1 + len(self.spec.shape), index)
                return RecordingError(
                    f"{path}: corrupt or truncated chunk: {type(chunk_exc).__name__}: {chunk_exc}"
                )
        return RecordingError(f"{self.path}: read failed: {type(exc).__name__}: {exc}")


def _checksummed(codecs: tuple[Any, ...]) -> bool:
    """Whether every chunk (and, for shards, the shard index) ends in a crc32c checksum."""
    if len(codecs) == 1 and isinstance(codecs[0], ShardingCodec):
        sharding = codecs[0]
        return _checksummed(tuple(sharding.codecs)) and isinstance(sharding.index_codecs[-1], Crc32cCodec)
    return isinstance(codecs[-1], Crc32cCodec)
