"""The deletion / insertion test tells a faithful map from a random one on a model whose output depends
only on a known region."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perception.faithfulness import FaithfulnessCurves, deletion_insertion, salient_ranks

H, W = 24, 40
REGION = (slice(4, 10), slice(22, 34))  # 6 x 12 = 72 of 960 pixels (7.5 %)


def _region_model(t: torch.Tensor) -> torch.Tensor:
    """y = Σ over the region of x² (all channels): nothing outside the region matters."""
    return (t[:, :, REGION[0], REGION[1]] ** 2).sum(dim=(1, 2, 3))


def _frames() -> torch.Tensor:
    return torch.randn(4, 3, H, W, generator=torch.Generator().manual_seed(1))


def test_a_faithful_map_beats_random_and_a_random_map_does_not():
    x = _frames()
    full = _region_model(x).numpy()  # |Δy| once the whole region is gone
    faithful = np.zeros((4, H, W))
    faithful[:, REGION[0], REGION[1]] = 1.0
    random_map = np.random.default_rng(5).random((4, H, W))

    good = deletion_insertion(_region_model, x, faithful, random_orders=3).scores()
    # deletion: the whole change happens within the first 10 % for the faithful map (AUC ≈ 0.95 full),
    # along the whole axis for a random ranking (≈ 0.5 full)
    assert np.all(good["deletion_auc"] > 0.9 * full)
    assert np.all(np.abs(good["deletion_random_auc"] - 0.5 * full) < 0.15 * full)
    assert np.all(good["deletion_gain"] > 0.3 * full)
    assert np.all(good["insertion_gain"] > 0.3 * full)

    bad = deletion_insertion(_region_model, x, random_map, random_orders=3).scores()
    assert np.all(np.abs(bad["deletion_gain"]) < 0.15 * full)
    assert np.all(np.abs(bad["insertion_gain"]) < 0.15 * full)
    assert abs(bad["deletion_gain"].mean()) < 0.1 * full.mean()  # no gain on average


def test_an_inverted_map_is_worse_than_random():
    x = _frames()
    inverted = np.ones((4, H, W))
    inverted[:, REGION[0], REGION[1]] = 0.0
    scores = deletion_insertion(_region_model, x, inverted).scores()
    assert np.all(scores["deletion_gain"] < 0) and np.all(scores["insertion_gain"] < 0)


def test_curves_start_and_end_where_they_must():
    x = _frames()
    curves = deletion_insertion(_region_model, x, np.random.default_rng(0).random((4, H, W)))
    full = _region_model(x).numpy()
    np.testing.assert_allclose(curves.deletion[:, 0], 0.0, atol=1e-4)  # nothing deleted
    np.testing.assert_allclose(curves.deletion[:, -1], full, rtol=1e-5)  # everything deleted
    np.testing.assert_allclose(curves.insertion[:, 0], full, rtol=1e-5)  # nothing inserted
    np.testing.assert_allclose(curves.insertion[:, -1], 0.0, atol=1e-4)  # all back
    again = deletion_insertion(_region_model, x, np.random.default_rng(0).random((4, H, W)))
    np.testing.assert_array_equal(curves.deletion_random, again.deletion_random)  # seeded


def test_auc_is_the_trapezoid_mean():
    curves = FaithfulnessCurves(
        fractions=np.array([0.0, 0.5, 1.0]),
        deletion=np.array([[0.0, 1.0, 1.0]]),
        deletion_random=np.array([[0.0, 0.5, 1.0]]),
        insertion=np.zeros((1, 3)),
        insertion_random=np.zeros((1, 3)),
    )
    assert curves.auc(curves.deletion)[0] == pytest.approx(0.75)
    assert curves.scores()["deletion_gain"][0] == pytest.approx(0.25)


def test_ties_are_broken_at_random_not_by_position():
    ranks = salient_ranks(np.zeros((1, 10, 10)), np.random.default_rng(0))[0]
    assert sorted(ranks) == list(range(100))
    assert ranks[:50].mean() != pytest.approx(24.5)  # not row-major order


def test_bad_arguments_are_named():
    x = _frames()
    with pytest.raises(ValueError, match="maps must be"):
        deletion_insertion(_region_model, x, np.zeros((4, H, W + 1)))
    with pytest.raises(ValueError, match="fractions must ascend from 0 to 1"):
        deletion_insertion(_region_model, x, np.zeros((4, H, W)), fractions=(0.0, 0.5))
