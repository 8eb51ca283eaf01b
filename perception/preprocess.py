"""Camera preprocessing shared by training, the closed loop and the ONNX export: crop, then resize.

One contract (`PreprocessContract`) says what the network sees: rows cropped off the top and bottom of
the camera image, then a resize to 78x200 (the NCP paper's input). Two implementations follow it:

- `preprocess_u8`: numpy + cv2 (`cv2.resize`, INTER_AREA). The onboard runtime uses it (no torch).
- `preprocess_torch` (in `perception.tensor_preprocess`): torch only, written as two constant matrix
  products so it lives inside an ONNX graph. The matrices (`resize_weights`) reproduce cv2's INTER_AREA
  weights (true area averaging when shrinking on both axes, cv2's bilinear-like "area" emulation
  otherwise), so the two paths differ by at most 1 grey level (rounding, cv2's integer fast path and
  fixed-point weights); tests pin that bound. When the cropped image already has the output size,
  both paths are the exact identity.

Per-image standardisation (`standardize`, also in `perception.tensor_preprocess`) is the first step
inside the networks, not part of the contract: it runs on the [0, 1] float image in NCHW, as in the paper.

This module imports no torch (the onboard runtime uses it); the torch names `preprocess_torch`,
`Preprocess`, `standardize` and `static_shape` can still be imported from here and load torch on first
use.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

NCP_INPUT_HEIGHT = 78
NCP_INPUT_WIDTH = 200


@dataclass(frozen=True)
class PreprocessContract:
    """What the network sees of a camera image.

    Attributes:
        out_height: rows of the network input, px.
        out_width: columns of the network input, px.
        crop_top_frac: fraction of the camera image height removed at the top (sky, bonnet-free view).
        crop_bottom_frac: fraction of the camera image height removed at the bottom (bonnet).

    The defaults are the identity for the embedded simulator, which renders straight to 78x200.
    """

    out_height: int = NCP_INPUT_HEIGHT
    out_width: int = NCP_INPUT_WIDTH
    crop_top_frac: float = 0.0
    crop_bottom_frac: float = 0.0

    def __post_init__(self) -> None:
        for name in ("out_height", "out_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"PreprocessContract.{name} must be a positive int, got {value!r}")
        for name in ("crop_top_frac", "crop_bottom_frac"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"PreprocessContract.{name} must be a float in [0, 1), got {value!r}")
        if self.crop_top_frac + self.crop_bottom_frac >= 1.0:
            raise ValueError(
                "PreprocessContract: crop_top_frac + crop_bottom_frac must be < 1, got "
                f"{self.crop_top_frac} + {self.crop_bottom_frac}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for checkpoints, configs and ONNX metadata); `common.strict_config.from_dict` reads
        it back (an unknown key is an error naming it, a missing key takes its default)."""
        return asdict(self)


def crop_box(height: int, width: int, contract: PreprocessContract) -> tuple[int, int]:
    """Rows kept of a camera image: `image[top:bottom]`.

    Args:
        height: camera image height, px.
        width: camera image width, px (checked only; the crop keeps every column).
        contract: the preprocessing contract.

    Returns:
        (top, bottom): first kept row and one past the last kept row.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"crop_box: image size must be positive, got {height}x{width}")
    top = round(contract.crop_top_frac * height)
    bottom = height - round(contract.crop_bottom_frac * height)
    if bottom <= top:
        raise ValueError(
            f"crop_box: the contract's crop ({contract.crop_top_frac}, {contract.crop_bottom_frac}) "
            f"leaves no rows of a {height}-row image"
        )
    return top, bottom


def check_images_u8(shape: tuple[int, ...], is_u8: bool, dtype: Any, where: str, allow_single: bool) -> None:
    """Raise ValueError naming the expected layout unless the images are channels-last RGB uint8."""
    ndim_ok = len(shape) == 4 or (allow_single and len(shape) == 3)
    if not is_u8 or not ndim_ok or shape[-1] != 3:
        expected = "(H, W, 3) or (B, H, W, 3)" if allow_single else "(B, H, W, 3)"
        raise ValueError(
            f"{where}: expected {expected} uint8 RGB images (channels last), got shape {shape} dtype {dtype}"
        )


def preprocess_u8(images_u8: np.ndarray, contract: PreprocessContract) -> np.ndarray:
    """Crop and resize camera images with cv2 (numpy only; the onboard runtime's path).

    Args:
        images_u8: (H, W, 3) or (B, H, W, 3) uint8 RGB.
        contract: the preprocessing contract.

    Returns:
        (out_height, out_width, 3) or (B, out_height, out_width, 3) uint8, C-contiguous. When the crop
        already has the output size the pixels are returned unchanged.
    """
    if not isinstance(images_u8, np.ndarray):
        raise ValueError(f"preprocess_u8: expected a numpy array, got {type(images_u8).__name__}")
    check_images_u8(
        images_u8.shape, images_u8.dtype == np.uint8, images_u8.dtype, "preprocess_u8", allow_single=True
    )
    single = images_u8.ndim == 3
    batch = images_u8[None] if single else images_u8
    height, width = batch.shape[1:3]
    top, bottom = crop_box(height, width, contract)
    cropped = batch[:, top:bottom]
    if cropped.shape[1:3] == (contract.out_height, contract.out_width):
        out = np.ascontiguousarray(cropped)
    else:
        size = (contract.out_width, contract.out_height)  # cv2 takes (width, height)
        out = np.stack([cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in cropped])
    return out[0] if single else out


def _area_weights(src: int, dst: int) -> np.ndarray:
    """cv2's true INTER_AREA weights for shrinking one axis (resize.cpp, computeResizeAreaTab).

    Returns:
        (dst, src) float64 matrix; each row sums to 1.
    """
    scale = src / dst
    weights = np.zeros((dst, src))
    for d in range(dst):
        start = d * scale
        end = start + scale
        cell = min(scale, src - start)
        first = math.ceil(start)
        last = min(math.floor(end), src - 1)
        first = min(first, last)
        if first - start > 1e-3:  # partial source pixel on the left
            weights[d, first - 1] = (first - start) / cell
        weights[d, first:last] = 1.0 / cell
        if end - last > 1e-3:  # partial source pixel on the right
            weights[d, last] = min(end - last, 1.0, cell) / cell
    return weights


def _area_linear_weights(src: int, dst: int) -> np.ndarray:
    """cv2's INTER_AREA emulation when the image grows on some axis: 2 taps per output pixel.

    cv2 (resize.cpp, the generic path with `area_mode`) places the taps at floor(d * src / dst) and
    weights the right one by the fractional part of (d + 1) - (s + 1) * dst / src.

    Returns:
        (dst, src) float64 matrix; each row sums to 1.
    """
    inv_scale = dst / src
    scale = 1.0 / inv_scale  # cv2's own rounding: sx lands one pixel early where d * src / dst is whole
    weights = np.zeros((dst, src))
    for d in range(dst):
        s = math.floor(d * scale)
        frac = float(np.float32((d + 1) - (s + 1) * inv_scale))  # cv2 keeps the fraction as float32
        frac = 0.0 if frac <= 0 else frac - math.floor(frac)
        if s >= src - 1:  # clamp at the far border, as cv2 does
            s, frac = src - 1, 0.0
        weights[d, s] += 1.0 - frac
        if frac > 0.0:
            weights[d, s + 1] += frac
    return weights


def resize_weights(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column matrices of cv2 INTER_AREA: `out = rows @ image @ cols.T` per channel.

    Args:
        src_hw: (height, width) of the image being resized, px.
        dst_hw: (height, width) wanted, px.

    Returns:
        rows (dst_h, src_h) and cols (dst_w, src_w), float32.
    """
    (src_h, src_w), (dst_h, dst_w) = src_hw, dst_hw
    # cv2 averages true areas only when neither axis grows; otherwise it emulates on both axes.
    shrink = src_h >= dst_h and src_w >= dst_w
    weights = _area_weights if shrink else _area_linear_weights
    return weights(src_h, dst_h).astype(np.float32), weights(src_w, dst_w).astype(np.float32)


_TORCH_NAMES = ("preprocess_torch", "Preprocess", "standardize", "static_shape")


def __getattr__(name: str) -> Any:
    # Lazy bridge: `from perception.preprocess import Preprocess` works, while importing this module
    # (the onboard runtime does) loads no torch; torch comes only with these names.
    if name in _TORCH_NAMES:
        return getattr(importlib.import_module("perception.tensor_preprocess"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
