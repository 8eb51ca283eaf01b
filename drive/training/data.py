"""Training data: recorded episodes split by episode, cut into windows, augmented, batched and sharded.

    root ─ find_episodes ─ split_by_episode ─► train / val episode lists
         ─ WindowDataset (16-frame windows, stride) ─ AugmentedWindows (train only) ─ DataLoader

Order and sharding: `EpochSampler` wraps torch's `DistributedSampler` (also for one process, as rank 0
of 1), whose permutation depends only on (seed, epoch). With a global batch of B windows and N ranks,
rank r's k-th batch is permutation[k·B + r :: N][:B/N], so the N ranks of a step hold exactly the B
windows one process would: DDP trains like one process. The sampler yields (epoch, index) keys, so the
augmentation of a window is fixed by (seed, epoch, index) wherever it is loaded, and a resumed run can
skip the windows of the steps already taken without loading them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from drive.training.augment import augment_window
from drive.training.train_config import AugmentConfig, DataConfig

Batch = tuple[torch.Tensor, torch.Tensor]
"""(frames (B?, T, H, W, 3) uint8, labels (B?, T) float32 1/m): one window, or a batch of them."""


class WindowSource(Protocol):
    """What `AugmentedWindows` reads: a sized dataset indexed by window (WindowDataset is one)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


class AugmentedWindows(Dataset[Batch]):
    """A window dataset whose items are (frames, labels), augmented when keyed by (epoch, index).

    Args:
        base: items are dicts with `frames` (T, H, W, 3) uint8 and `labels` (T,) float32 (tensors or
            arrays), as recordings.dataset.WindowDataset gives, or (frames, labels) pairs.
        augment: the augmentation config; None (validation) never augments.
        seed: the run's seed.

    Items: `dataset[(epoch, index)]` (training) or `dataset[index]` (no augmentation) ->
    (frames (T, H, W, 3) uint8 tensor, labels (T,) float32 tensor, 1/m).
    """

    def __init__(self, base: WindowSource, augment: AugmentConfig | None = None, seed: int = 0) -> None:
        self.base = base
        self.augment = augment
        self.seed = seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: int | tuple[int, int]) -> Batch:
        epoch, index = key if isinstance(key, tuple) else (None, key)
        item = self.base[index]
        frames, labels = (item["frames"], item["labels"]) if isinstance(item, dict) else item
        frames = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
        labels = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
        if self.augment is not None and epoch is not None and self.augment.enabled:
            frames, labels = augment_window(frames, labels, self.augment, self.seed, epoch, index)
        return torch.from_numpy(np.ascontiguousarray(frames)), torch.from_numpy(labels.astype(np.float32))


class EpochSampler(Sampler[tuple[int, int]]):
    """This rank's (epoch, index) keys for one epoch: DistributedSampler's order, minus a skipped prefix.

    Args:
        length: windows in the dataset.
        rank, world_size: this process's DDP rank and the number of ranks (0, 1 without DDP).
        seed: seed of the shuffle (the permutation of epoch e uses seed + e, as DistributedSampler).
        shuffle: shuffle (training) or keep the order.
        drop_last: drop the tail that does not divide by world_size (training).
    """

    def __init__(
        self, length: int, rank: int, world_size: int, seed: int, shuffle: bool, drop_last: bool
    ) -> None:
        # DistributedSampler only takes len() of its dataset, so a range of the indices stands in for it.
        self._base: DistributedSampler[int] = DistributedSampler(
            range(length),  # type: ignore[arg-type]
            num_replicas=world_size,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch and how many of this rank's first keys to skip (a resumed epoch)."""
        self.epoch, self.skip = epoch, skip
        self._base.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for position, index in enumerate(self._base):
            if position >= self.skip:
                yield self.epoch, index

    def __len__(self) -> int:
        return max(len(self._base) - self.skip, 0)


def shard_indices(length: int, rank: int, world_size: int) -> list[int]:
    """Every index once over all ranks (rank r takes r, r + N, ...): for validation, no padding."""
    return list(range(rank, length, world_size))


@dataclass
class TrainingData:
    """The datasets of a run and where they came from.

    Attributes:
        train: the training windows (AugmentedWindows).
        val: the validation windows, or None when val_fraction is 0.
        train_episodes, val_episodes: the episode directories of each split.
        image_shape: (H, W, 3) of the recorded frames.
    """

    train: AugmentedWindows
    val: AugmentedWindows | None
    train_episodes: list[Path] = field(default_factory=list)
    val_episodes: list[Path] = field(default_factory=list)
    image_shape: tuple[int, int, int] = (78, 200, 3)

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (saved in checkpoints: which episodes trained and validated)."""
        return {
            "train_episodes": [str(p) for p in self.train_episodes],
            "val_episodes": [str(p) for p in self.val_episodes],
            "train_windows": len(self.train),
            "val_windows": len(self.val) if self.val is not None else 0,
            "image_shape": list(self.image_shape),
        }


def load_recordings(data: DataConfig, augment: AugmentConfig, seed: int) -> TrainingData:
    """Find the episodes under `data.root`, split them by episode and wrap them as window datasets.

    Raises:
        FileNotFoundError: `data.root` is empty or not a directory.
        ValueError: no episodes, too few frames for one window, or mixed image shapes.
    """
    from recordings.catalog import find_episodes
    from recordings.dataset import WindowDataset, split_by_episode

    if not data.root:
        raise ValueError("no training data: give --data DIR (or data.root in the config)")
    episodes = find_episodes(data.root)
    if not episodes:
        raise ValueError(f"no recorded episodes (directories with meta.json) under {data.root}")
    train_paths, val_paths = split_by_episode(episodes, data.val_fraction, data.split_seed)
    if data.val_fraction > 0 and not val_paths:
        raise ValueError(
            f"{data.root} holds {len(episodes)} episode; a split by episode needs at least 2 "
            "(or set data.val_fraction=0 to train without validation)"
        )
    cache = data.cache_mb << 20
    train = WindowDataset(train_paths, data.window, data.stride, cache_bytes=cache)
    if len(train) == 0:
        raise ValueError(
            f"the training episodes under {data.root} are shorter than one {data.window}-frame window"
        )
    val = WindowDataset(val_paths, data.window, data.stride, cache_bytes=cache) if val_paths else None
    if val is not None and len(val) == 0:
        raise ValueError(
            f"the validation episodes {val_paths} are shorter than one {data.window}-frame window"
        )
    shape = tuple(train.episodes[0].image_shape)
    if val is not None and tuple(val.episodes[0].image_shape) != shape:
        raise ValueError(f"validation frames are {val.episodes[0].image_shape}, training frames {shape}")
    return TrainingData(
        train=AugmentedWindows(train, augment, seed),
        val=AugmentedWindows(val) if val is not None else None,
        train_episodes=list(train_paths),
        val_episodes=list(val_paths),
        image_shape=shape,  # type: ignore[arg-type]
    )


def train_loader(
    dataset: AugmentedWindows,
    batch_per_rank: int,
    rank: int,
    world_size: int,
    seed: int,
    workers: int,
    pin_memory: bool = False,
) -> tuple[DataLoader[Batch], EpochSampler]:
    """The shuffled training loader of one rank and its sampler (call `sampler.set_epoch` per epoch)."""
    sampler = EpochSampler(len(dataset), rank, world_size, seed, shuffle=True, drop_last=True)
    loader = DataLoader(
        dataset,
        batch_size=batch_per_rank,
        sampler=sampler,
        drop_last=True,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,  # workers keep their decoded-chunk caches across epochs
    )
    return loader, sampler


def eval_loader(
    dataset: AugmentedWindows,
    batch_per_rank: int,
    rank: int,
    world_size: int,
    workers: int,
    pin_memory: bool = False,
) -> DataLoader[Batch]:
    """This rank's share of the validation windows, in order, every window once over all ranks."""
    subset = torch.utils.data.Subset(dataset, shard_indices(len(dataset), rank, world_size))
    return DataLoader(
        subset,
        batch_size=batch_per_rank,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
    )


def steps_per_epoch(num_windows: int, batch: int) -> int:
    """Optimiser steps of one epoch with a global batch of `batch` windows (the tail is dropped)."""
    return num_windows // batch


def stack_windows(items: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(frames, labels) pairs -> ((B, T, H, W, 3) uint8, (B, T) float32), as the DataLoader collates."""
    return torch.stack([f for f, _ in items]), torch.stack([y for _, y in items])
