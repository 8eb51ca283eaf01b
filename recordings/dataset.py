"""The training dataset: fixed-length windows of consecutive frames with their expert-curvature labels.

Windows never cross episodes. An episode of T frames gives `num_windows(T, window, stride)` windows,
starting at 0, stride, 2*stride, ... (frames after the last whole window are not used).

Speed (choice): frames come through zarr. With a cache (the default), whole chunks (64 frames) are
decoded once and kept in an LRU of `cache_bytes` per process (each DataLoader worker has its own); a
16-frame window then costs one memory copy. When the dataset fits the cache (78x200 frames: ~3 MB per
chunk, 1 GiB holds ~22,000 frames, 18 min at 20 Hz) every epoch after the first is served from memory.
With `cache_bytes` below one chunk, each window is read directly and decodes only its own 8-frame groups
(see `recordings.streams`): the right choice for datasets far larger than memory.
`python bench/recordings.py` prints both rates.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from recordings.catalog import LABEL_COLUMN
from recordings.reader import Recording
from recordings.schema import FRAMES_STREAM

DEFAULT_CACHE_BYTES = 1 << 30
"""Decoded-chunk cache per process: 1 GiB."""


def num_windows(num_frames: int, window: int, stride: int) -> int:
    """Windows of `window` frames, `stride` apart, that fit in `num_frames`: (T - window) // stride + 1."""
    return 0 if num_frames < window else (num_frames - window) // stride + 1


class _ChunkCache:
    """Least-recently-used decoded chunks, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._chunks: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def get(self, key: tuple[int, int], load: Callable[[], np.ndarray]) -> np.ndarray:
        chunk = self._chunks.get(key)
        if chunk is not None:
            self._chunks.move_to_end(key)
            return chunk
        chunk = load()
        if chunk.nbytes <= self.max_bytes:
            self._chunks[key] = chunk
            self.nbytes += chunk.nbytes
            while self.nbytes > self.max_bytes:
                _, evicted = self._chunks.popitem(last=False)
                self.nbytes -= evicted.nbytes
        return chunk


class WindowDataset(Dataset[dict[str, Any]]):
    """Windows of consecutive frames from a set of episodes, for sequence training.

    Args:
        episode_paths: episode directories (all with the same image shape).
        window: frames per item (the paper trains on 16-step sequences).
        stride: frames between the starts of consecutive windows of one episode.
        label_column: telemetry column used as the label (the expert's curvature, 1/m).
        extra_columns: more telemetry columns to return per frame (e.g. ("speed_mps",)).
        cache_bytes: decoded-chunk cache per process, bytes (0 disables it).

    Items are dicts:
        frames: (window, H, W, 3) uint8 tensor, RGB.
        labels: (window,) float32 tensor, `label_column` of each frame.
        timestamps_s: (window,) float64 tensor, simulation time of each frame, s.
        episode: index into `episode_paths`; start: first frame of the window in its episode.
        <extra column>: (window,) tensor of the column's dtype.

    The object pickles (zarr handles and the cache are rebuilt in each worker), so it works with
    DataLoader workers under fork or spawn.
    """

    def __init__(
        self,
        episode_paths: Sequence[str | Path],
        window: int = 16,
        stride: int = 8,
        *,
        label_column: str = LABEL_COLUMN,
        extra_columns: Sequence[str] = (),
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        for name, value in (("window", window), ("stride", stride)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if cache_bytes < 0:
            raise ValueError(f"cache_bytes must be >= 0, got {cache_bytes}")
        self.window, self.stride = window, stride
        self.label_column = label_column
        self.extra_columns = tuple(extra_columns)
        self.cache_bytes = cache_bytes
        self.episodes = [Recording(p) for p in episode_paths]
        if not self.episodes:
            raise ValueError("episode_paths is empty")
        shape = self.episodes[0].image_shape
        for rec in self.episodes:
            if rec.image_shape != shape:
                raise ValueError(f"{rec.path}: image shape {rec.image_shape} differs from {shape}")
            for column in (label_column, *self.extra_columns):
                if column not in rec.telemetry:
                    raise ValueError(f"{rec.path}: no telemetry column {column!r}")
        counts = np.array([num_windows(rec.num_frames, window, stride) for rec in self.episodes], np.int64)
        self._first_index = np.concatenate([[0], np.cumsum(counts)])  # item index of each episode's window 0
        self._cache = _ChunkCache(cache_bytes)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._cache = _ChunkCache(self.cache_bytes)

    def __len__(self) -> int:
        return int(self._first_index[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """(episode index, first frame) of item `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} outside 0..{len(self) - 1}")
        episode = int(np.searchsorted(self._first_index, index, side="right")) - 1
        return episode, int(index - self._first_index[episode]) * self.stride

    def __getitem__(self, index: int) -> dict[str, Any]:
        episode, start = self.locate(int(index))
        rec = self.episodes[episode]
        stop = start + self.window
        item: dict[str, Any] = {
            "frames": torch.from_numpy(self._frames(episode, rec, start, stop)),
            "labels": torch.from_numpy(rec.telemetry[self.label_column][start:stop].astype(np.float32)),
            "timestamps_s": torch.from_numpy(rec.telemetry["timestamp_s"][start:stop].copy()),
            "episode": episode,
            "start": start,
        }
        for column in self.extra_columns:
            item[column] = torch.from_numpy(rec.telemetry[column][start:stop].copy())
        return item

    def _frames(self, episode: int, rec: Recording, start: int, stop: int) -> np.ndarray:
        """Frames start..stop-1 of one episode as a fresh array (never a view into the cache)."""
        size = rec.chunk_frames
        if self.cache_bytes < size * int(np.prod(rec.image_shape)):
            return rec.frames(start, stop)  # no room for a chunk: decode only the window
        pieces = []
        for chunk in range(start // size, (stop - 1) // size + 1):
            data = self._cache.get((episode, chunk), partial(rec.chunk, FRAMES_STREAM, chunk))
            lo = max(start - chunk * size, 0)
            pieces.append(data[lo : stop - chunk * size])
        return pieces[0].copy() if len(pieces) == 1 else np.concatenate(pieces)


def split_by_episode(
    paths: Sequence[str | Path], val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[Path], list[Path]]:
    """Split episodes (never frames) into train and validation sets, deterministically.

    The paths are sorted first, so the split depends only on the set of paths and the seed. With
    0 < val_fraction and at least two episodes, validation gets at least one episode and training keeps
    at least one.

    Returns:
        (train, val): disjoint lists of paths, each sorted.

    Raises:
        ValueError: val_fraction outside [0, 1), or a path given twice.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ordered = sorted(Path(p) for p in paths)
    if len(set(ordered)) != len(ordered):
        raise ValueError("split_by_episode: a path is given twice")
    n = len(ordered)
    n_val = int(round(val_fraction * n))
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    chosen = set(np.random.default_rng(seed).permutation(n)[:n_val].tolist())
    train = [p for i, p in enumerate(ordered) if i not in chosen]
    val = [p for i, p in enumerate(ordered) if i in chosen]
    return train, val
