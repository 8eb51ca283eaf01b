"""Saliency: VisualBackProp finds the region that drives a constructed network; SSIM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from perception.conv_head import ConvHead
from perception.saliency import ssim, visual_backprop

PATCH_LEFT = (slice(20, 50), slice(20, 60))  # rows, cols of a bright patch in a 78x200 image
PATCH_RIGHT = (slice(30, 60), slice(140, 180))


def _patch_image(*patches: tuple[slice, slice]) -> torch.Tensor:
    image = torch.full((78, 200, 3), 10, dtype=torch.uint8)
    for rows, cols in patches:
        image[rows, cols] = 250
    return image


def _averaging_head() -> ConvHead:
    """A ConvHead whose convs average their window (positive weights, zero bias) and whose dense
    layers add up their inputs: after standardisation the dark background is negative and dies at the
    first ReLU, so only the bright patch drives any activation."""
    head = ConvHead().eval()
    with torch.no_grad():
        for conv in head.convs:
            conv.weight.fill_(1.0 / conv.weight[0].numel())
            conv.bias.zero_()
        head.dense_weight.fill_(1.0 / 250)
        head.dense_bias.zero_()
    return head


def _inside(saliency: torch.Tensor, box: tuple[slice, slice]) -> bool:
    row, col = np.unravel_index(int(saliency.argmax()), tuple(saliency.shape))
    return box[0].start <= row < box[0].stop and box[1].start <= col < box[1].stop


# --- VisualBackProp -------------------------------------------------------------------------------


def test_visual_backprop_finds_the_patch_that_drives_the_conv_head():
    head = _averaging_head()
    images = torch.stack([_patch_image(PATCH_LEFT), _patch_image(PATCH_RIGHT)])
    saliency = visual_backprop(head.feature_maps(images), (78, 200))
    assert saliency.shape == (2, 78, 200) and saliency.dtype == torch.float32
    assert (
        saliency.min() >= 0 and saliency.max() <= 1 and torch.allclose(saliency.amax((1, 2)), torch.ones(2))
    )
    assert _inside(saliency[0], PATCH_LEFT) and _inside(saliency[1], PATCH_RIGHT)
    # Away from the patch (beyond the receptive field's reach) there is no attention at all.
    far_left, far_right = saliency[0][:, 120:], saliency[1][:, :80]
    assert far_left.max() < 1e-3 and far_right.max() < 1e-3


def test_visual_backprop_multiplies_layers():
    # The deep layer sees A and B; the shallow one only A: only A survives the product.
    shallow = torch.zeros(1, 4, 20, 40)
    shallow[:, :, 2:6, 2:6] = 1.0  # region A
    deep = torch.zeros(1, 2, 10, 20)
    deep[:, :, 1:3, 1:3] = 1.0  # A at half resolution
    deep[:, :, 6:9, 14:18] = 2.0  # B, stronger, but dark in the shallow map
    saliency = visual_backprop([shallow, deep], (40, 80))[0]
    assert _inside(saliency, (slice(4, 12), slice(4, 12)))  # A in input pixels
    assert saliency[12:18, 28:36].max() < 1e-6  # B
    # a single map is just its channel mean, upsampled and normalised
    single = visual_backprop([deep], (10, 20))[0]
    torch.testing.assert_close(single, deep[0].mean(0) / 2.0)


def test_visual_backprop_of_dead_maps_is_zero_not_nan():
    saliency = visual_backprop([torch.zeros(2, 3, 5, 5), torch.zeros(2, 3, 3, 3)], (10, 10))
    assert torch.equal(saliency, torch.zeros(2, 10, 10))


def test_visual_backprop_rejects_bad_maps():
    with pytest.raises(ValueError, match="empty"):
        visual_backprop([], (78, 200))
    with pytest.raises(ValueError, match=r"feature_maps\[1\] must be \(B=2, C, h, w\)"):
        visual_backprop([torch.zeros(2, 3, 5, 5), torch.zeros(1, 3, 5, 5)], (78, 200))
    with pytest.raises(ValueError, match="input_size"):
        visual_backprop([torch.zeros(2, 3, 5, 5)], (0, 10))


# --- SSIM -----------------------------------------------------------------------------------------


def test_ssim_of_a_map_with_itself_is_one_and_falls_with_noise():
    rng = np.random.default_rng(0)
    # a smooth map in [0, 1], like a saliency map
    clean = F.avg_pool2d(torch.rand(1, 78, 200, dtype=torch.float64), 5, 1, 2)[0].numpy()
    assert ssim(clean, clean) == 1.0
    scores = []
    for sigma in (0.02, 0.1, 0.3):
        noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 1)
        scores.append(ssim(clean, noisy))
    assert 1.0 > scores[0] > scores[1] > scores[2]
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    assert ssim(clean, noisy) == pytest.approx(ssim(noisy, clean), abs=1e-12)


def test_ssim_uses_the_standard_constants():
    c1, c2 = 0.01**2, 0.03**2
    a, b = np.full((30, 30), 0.2), np.full((30, 30), 0.4)
    # Flat maps: only the luminance term, (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1).
    assert ssim(a, b) == pytest.approx((2 * 0.2 * 0.4 + c1) / (0.2**2 + 0.4**2 + c1), rel=1e-9)
    # Same mean, b with contrast d: C2 / (d^2 + C2) (a fine checkerboard: local mean 0.5, variance d^2).
    d = 0.1
    checker = 0.5 + d * np.where((np.indices((40, 40)).sum(0) % 2) == 0, 1.0, -1.0)
    assert ssim(np.full((40, 40), 0.5), checker) == pytest.approx(c2 / (d**2 + c2), rel=0.05)


def test_ssim_rejects_bad_maps():
    with pytest.raises(ValueError, match="one shape"):
        ssim(np.zeros((20, 20)), np.zeros((20, 21)))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((5, 20)), np.zeros((5, 20)))
    with pytest.raises(ValueError, match=r"b must be finite and in \[0, 1\]"):
        ssim(np.zeros((20, 20)), np.full((20, 20), 2.0))


def test_visual_backprop_from_channel_means_equals_the_torch_version():
    from perception.saliency import visual_backprop
    from perception.saliency_numpy import visual_backprop_from_means

    generator = torch.Generator().manual_seed(3)
    shapes = [(24, 37, 98), (36, 17, 47), (48, 7, 22), (64, 5, 20), (8, 3, 18)]
    maps = [torch.relu(torch.randn(1, *shape, generator=generator)) for shape in shapes]
    reference = visual_backprop(maps, (78, 200))[0].numpy()
    means = [m.mean(dim=1).numpy() for m in maps]  # what a diagnostics graph outputs, (1, h, w) each
    result = visual_backprop_from_means(means, (78, 200))
    assert result.shape == (78, 200) and result.dtype == np.float32
    assert reference.std() > 0.05
    np.testing.assert_allclose(result, reference, atol=1e-5)
    with pytest.raises(ValueError, match=r"channel_means\[1\] must be \(h, w\)"):
        visual_backprop_from_means([means[0], np.zeros((2, 3, 4, 5))], (78, 200))
