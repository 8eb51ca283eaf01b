"""PCA, per-neuron max Lipschitz and clean-vs-noisy saliency SSIM give the values computed by hand."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import drive.eval.interpret
from drive.eval.interpret import max_lipschitz, pca, saliency_ssim
from perception.saliency import ssim


def test_doctests():
    assert doctest.testmod(drive.eval.interpret).failed == 0


def test_pca_of_two_orthogonal_signals_splits_the_variance_four_to_one():
    # Two zero-mean, uncorrelated signals with variances 4 and 1, mixed into 3 neurons by a rotation.
    t = np.arange(400)
    a = 2.0 * np.sqrt(2) * np.sin(2 * np.pi * t / 40)  # variance 4
    b = np.sqrt(2) * np.cos(2 * np.pi * t / 40)  # variance 1, orthogonal to a over whole periods
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    hidden = np.stack([a, b, np.zeros_like(a)], axis=1) @ rotation.T + np.array([0.5, -1.0, 2.0])
    result = pca(hidden)
    np.testing.assert_allclose(result.explained_variance_ratio, [0.8, 0.2, 0.0], atol=1e-9)
    assert result.pc1_explained == pytest.approx(0.8)
    np.testing.assert_allclose(result.mean, [0.5, -1.0, 2.0], atol=1e-12)
    # PC1 is the first rotated axis (up to sign), and the projection recovers signal a.
    np.testing.assert_allclose(abs(result.components[0] @ rotation[:, 0]), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.abs(result.pc1), np.abs(a), atol=1e-9)
    # Deterministic sign: the largest loading of each axis is positive.
    assert result.components[0][np.abs(result.components[0]).argmax()] > 0


def test_pca_of_constant_activity_and_bad_input():
    assert pca(np.ones((10, 4))).pc1_explained == 0.0
    with pytest.raises(ValueError, match="T >= 2"):
        pca(np.ones((1, 4)))
    with pytest.raises(ValueError, match="NaN"):
        pca(np.array([[0.0], [np.nan]]))


def test_max_lipschitz_is_the_largest_one_step_change_per_neuron():
    hidden = np.array(
        [
            [0.0, 1.0],
            [0.5, 1.0],
            [0.4, 3.0],  # neuron 1 jumps by 2 here (a teleport frame)
            [0.0, 2.9],
        ]
    )
    np.testing.assert_allclose(max_lipschitz(hidden), [0.5, 2.0])
    # Leaving out the step into frame 2 (the jump) leaves 0.5 -> max(0.5, 0.4) and 1 -> 0.1.
    np.testing.assert_allclose(max_lipschitz(hidden, breaks=[2]), [0.5, 0.1])
    np.testing.assert_allclose(max_lipschitz(hidden, breaks=[1, 2, 3]), [0.0, 0.0])
    with pytest.raises(ValueError, match="T >= 2"):
        max_lipschitz(np.zeros((1, 3)))


def test_saliency_ssim_pairs_frames_by_index():
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (5, 24, 30), dtype=np.uint8)
    noisy = clean.copy()
    noisy[3] = rng.integers(0, 256, (24, 30), dtype=np.uint8)
    values = saliency_ssim(clean, noisy)
    np.testing.assert_allclose(values[[0, 1, 2, 4]], 1.0)
    assert values[3] == pytest.approx(ssim(clean[3] / 255.0, noisy[3] / 255.0))
    assert values[3] < 0.2
    # uint8 and [0, 1] float inputs agree; `frames` and unequal lengths cut to the common prefix.
    np.testing.assert_allclose(saliency_ssim(clean / 255.0, noisy / 255.0), values)
    assert len(saliency_ssim(clean, noisy, frames=2)) == 2
    assert len(saliency_ssim(clean, noisy[:4])) == 4
    with pytest.raises(ValueError, match="sizes differ"):
        saliency_ssim(clean, noisy[:, :20])
    with pytest.raises(ValueError, match="no common frames"):
        saliency_ssim(clean[:0], noisy)
