"""Where a network looks: VisualBackProp, and SSIM to compare two saliency maps.

- `visual_backprop` (Bojarski et al. 2016, used by the NCP paper): from the conv feature maps only; no
  maintained library has it, so it lives here. Grad-CAM and integrated gradients come from Captum
  (`perception.attribution`).
- `ssim` (Wang et al. 2004): the paper's robustness-of-attention measure (clean vs noisy saliency).

Every map comes back as (B, H, W) float in [0, 1] at the network's input size.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_DYNAMIC_RANGE = 1.0  # L: saliency maps live in [0, 1]


def _upsample(maps: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """(B, h, w) -> (B, H, W) by bilinear interpolation.

    VisualBackProp upsamples with a transposed convolution of all-ones kernels shaped like the layer's
    own kernel; bilinear interpolation is the same kind of spreading (a triangle kernel of twice the
    stride) and needs no knowledge of kernels, strides or padding, so any list of maps works.
    """
    if tuple(maps.shape[-2:]) == tuple(size_hw):
        return maps
    return F.interpolate(maps[:, None], size=size_hw, mode="bilinear", align_corners=False)[:, 0]


def _scale_by_max(maps: torch.Tensor) -> torch.Tensor:
    """Divide each (h, w) map by its maximum, keeping zeros at zero (all-zero maps stay zero)."""
    peak = maps.flatten(1).amax(dim=1).clamp(min=torch.finfo(maps.dtype).tiny)
    return maps / peak[:, None, None]


def normalize_01(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each (H, W) map of a (B, H, W) batch to [0, 1]; flat maps become zeros."""
    flat = maps.flatten(1)
    low = flat.amin(dim=1)[:, None, None]
    span = (flat.amax(dim=1)[:, None, None] - low).clamp(min=torch.finfo(maps.dtype).tiny)
    return ((maps - low) / span).clamp(0.0, 1.0)


def _check_size(input_size: tuple[int, ...], where: str) -> tuple[int, int]:
    if len(input_size) != 2 or any(int(s) != s or s <= 0 for s in input_size):
        raise ValueError(f"{where}: input_size must be (height, width) positive ints, got {input_size!r}")
    return int(input_size[0]), int(input_size[1])


def visual_backprop(feature_maps: Sequence[torch.Tensor], input_size: tuple[int, int]) -> torch.Tensor:
    """VisualBackProp saliency from post-ReLU conv feature maps.

    Each map is averaged over its channels (and scaled by its maximum to keep the product in range);
    starting from the deepest, the running mask is upsampled to the next shallower map's size and
    multiplied into it; the final mask is upsampled to the input size and normalised to [0, 1].

    Args:
        feature_maps: shallow to deep, each (B, C, h, w) (e.g. `ConvHead.feature_maps(images)`).
        input_size: (H, W) of the network input, px.

    Returns:
        (B, H, W) float32 in [0, 1], detached.
    """
    size_hw = _check_size(input_size, "visual_backprop")
    if len(feature_maps) == 0:
        raise ValueError("visual_backprop: feature_maps is empty")
    batch = feature_maps[0].shape[0]
    for index, fmap in enumerate(feature_maps):
        if fmap.dim() != 4 or fmap.shape[0] != batch:
            raise ValueError(
                f"visual_backprop: feature_maps[{index}] must be (B={batch}, C, h, w), "
                f"got {tuple(fmap.shape)}"
            )
    with torch.no_grad():
        averages = [_scale_by_max(fmap.float().mean(dim=1)) for fmap in feature_maps]
        mask = averages[-1]
        for shallower in reversed(averages[:-1]):
            mask = _upsample(mask, (shallower.shape[-2], shallower.shape[-1])) * shallower
        return normalize_01(_upsample(mask, size_hw))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two saliency maps in [0, 1] (Wang et al. 2004, the standard constants).

    Gaussian window 11x11, sigma 1.5, C1 = (0.01 L)^2, C2 = (0.03 L)^2 with L = 1; the SSIM map is
    averaged over the pixels whose window lies inside the image (the reference 'valid' region).

    Args:
        a: (H, W) float array in [0, 1], H, W >= 11 (a torch tensor on CPU also works).
        b: (H, W) float array in [0, 1], same shape.

    Returns:
        Mean SSIM, 1.0 for identical maps, lower as they differ.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"ssim: expected two (H, W) maps of one shape, got {x.shape} and {y.shape}")
    if min(x.shape) < SSIM_WINDOW:
        raise ValueError(f"ssim: maps must be at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {x.shape}")
    for name, m in (("a", x), ("b", y)):
        if not np.isfinite(m).all() or m.min() < -1e-6 or m.max() > SSIM_DYNAMIC_RANGE + 1e-6:
            raise ValueError(f"ssim: {name} must be finite and in [0, 1], got [{m.min()}, {m.max()}]")
    c1 = (0.01 * SSIM_DYNAMIC_RANGE) ** 2
    c2 = (0.03 * SSIM_DYNAMIC_RANGE) ** 2

    def blur(m: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(m, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    pad = SSIM_WINDOW // 2
    return float(ssim_map[pad:-pad, pad:-pad].mean())
