"""WindowDataset: aligned windows within episodes; split_by_episode: disjoint and deterministic."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from recordings.dataset import WindowDataset, num_windows, split_by_episode
from recordings.synthetic import frame_indices
from tests.recordings.episodes import label_of, write_episode

LENGTHS = (21, 16, 15, 40)  # chunk 8: partial last chunks, an episode too short for one window


@pytest.fixture
def episodes(tmp_path):
    return [write_episode(tmp_path / f"ep{e}", n, episode=e) for e, n in enumerate(LENGTHS)]


@pytest.mark.parametrize(
    ("frames", "window", "stride", "expected"),
    [
        (21, 16, 8, 1),
        (24, 16, 8, 2),
        (15, 16, 8, 0),
        (16, 16, 8, 1),
        (40, 16, 8, 4),
        (10, 3, 1, 8),
        (10, 3, 4, 2),
    ],
)
def test_window_count_formula(frames, window, stride, expected):
    assert num_windows(frames, window, stride) == expected


def _check_item(item, window):
    episode, start = item["episode"], item["start"]
    ids = frame_indices(item["frames"].numpy())
    np.testing.assert_array_equal(ids, np.arange(start, start + window))
    assert (item["frames"][:, 0, 0, 2] == episode).all()  # every frame from the item's episode
    expected = torch.tensor([label_of(i, episode) for i in ids], dtype=torch.float32)
    assert torch.equal(item["labels"], expected)
    assert torch.allclose(item["timestamps_s"], torch.as_tensor(ids * 0.05, dtype=torch.float64))


@pytest.mark.parametrize(("window", "stride"), [(16, 8), (5, 3), (8, 8), (1, 1)])
def test_every_window_is_aligned_and_inside_one_episode(episodes, window, stride):
    ds = WindowDataset(episodes, window=window, stride=stride)
    assert len(ds) == sum(num_windows(n, window, stride) for n in LENGTHS)
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        assert item["frames"].shape == (window, 6, 8, 3) and item["frames"].dtype == torch.uint8
        assert item["labels"].dtype == torch.float32 and item["timestamps_s"].dtype == torch.float64
        assert item["start"] + window <= LENGTHS[item["episode"]]
        assert item["start"] % stride == 0
        _check_item(item, window)
        seen.add((item["episode"], item["start"]))
    assert len(seen) == len(ds)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_cache_does_not_change_results_and_items_do_not_alias_it(episodes):
    cached, uncached = WindowDataset(episodes, cache_bytes=1 << 30), WindowDataset(episodes, cache_bytes=0)
    order = np.random.default_rng(0).permutation(len(cached)).tolist() * 2
    for i in order:
        a, b = cached[i], uncached[i]
        assert torch.equal(a["frames"], b["frames"]) and torch.equal(a["labels"], b["labels"])
        a["frames"].zero_()  # a caller scribbling on an item must not corrupt the cache
    assert cached._cache.nbytes > 0 and uncached._cache.nbytes == 0
    _check_item(cached[0], 16)


def test_small_cache_evicts_and_stays_correct(episodes):
    ds = WindowDataset(episodes, window=5, stride=2, cache_bytes=2 * 8 * 6 * 8 * 3)  # two chunks
    for i in np.random.default_rng(1).permutation(len(ds)):
        _check_item(ds[int(i)], 5)
        assert ds._cache.nbytes <= ds.cache_bytes


def test_extra_columns_are_returned_per_frame(episodes):
    ds = WindowDataset(episodes, extra_columns=("speed_mps", "frame"))
    item = ds[0]
    assert torch.equal(item["frame"], torch.arange(16))
    assert torch.allclose(item["speed_mps"], torch.full((16,), 4.47))
    with pytest.raises(ValueError, match="no telemetry column 'nope'"):
        WindowDataset(episodes, extra_columns=("nope",))


def test_bad_arguments_are_refused(episodes, tmp_path):
    with pytest.raises(ValueError, match="window must be a positive int"):
        WindowDataset(episodes, window=0)
    with pytest.raises(ValueError, match="stride"):
        WindowDataset(episodes, stride=-1)
    with pytest.raises(ValueError, match="empty"):
        WindowDataset([])
    other = write_episode(tmp_path / "big", 20, shape=(8, 8, 3))
    with pytest.raises(ValueError, match="image shape"):
        WindowDataset([episodes[0], other])


def test_pickles_and_works_with_dataloader_workers(episodes):
    ds = WindowDataset(episodes, window=4, stride=4)
    ds[0]  # warm the cache and open the zarr handles before pickling
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[3]["frames"], ds[3]["frames"])
    loader = DataLoader(
        ds, batch_size=4, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(0)
    )
    seen = []
    for batch in loader:
        assert batch["frames"].shape[1:] == (4, 6, 8, 3)
        for b in range(len(batch["episode"])):
            item = {key: value[b] for key, value in batch.items()}  # collate stacked every field
            item["episode"], item["start"] = int(item["episode"]), int(item["start"])
            _check_item(item, 4)
            seen.append((item["episode"], item["start"]))
    assert len(seen) == len(set(seen)) == len(ds)


def test_split_by_episode_is_disjoint_deterministic_and_order_independent(tmp_path):
    paths = [tmp_path / f"episode-{i:04d}" for i in range(10)]
    train, val = split_by_episode(paths, val_fraction=0.3, seed=4)
    assert len(val) == 3 and len(train) == 7
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(paths)
    assert split_by_episode(list(reversed(paths)), 0.3, seed=4) == (train, val)
    assert split_by_episode([str(p) for p in paths], 0.3, seed=4) == (train, val)
    others = {tuple(split_by_episode(paths, 0.3, seed=s)[1]) for s in range(8)}
    assert len(others) > 1  # the seed matters
    assert split_by_episode(paths[:2], 0.01, seed=0)[1] != []  # at least one validation episode
    assert len(split_by_episode(paths[:2], 0.9, seed=0)[0]) == 1  # at least one training episode
    assert split_by_episode(paths, 0.0) == (sorted(paths), [])
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_episode(paths, 1.0)
    with pytest.raises(ValueError, match="twice"):
        split_by_episode(paths + paths[:1], 0.2)
