"""The torch twin of `perception.preprocess`: preprocessing that can live inside an ONNX graph.

`preprocess_torch` follows the same `PreprocessContract` as the cv2 path; `standardize` is the
per-image standardisation that opens every network here.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from perception.preprocess import PreprocessContract, check_images_u8, crop_box, resize_weights


def static_shape(tensor: torch.Tensor) -> tuple[int, ...]:
    """The tensor's shape as Python ints, also while tracing for ONNX export.

    An exported graph is specialised to the example input's image size (the weights of the resize
    and the standardisation's element count depend on it), so recording these sizes as constants is
    intended; the tracer's warning about it is silenced here (and for the resize matrices below).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # type: ignore[attr-defined]  # no __all__
        return tuple(int(size) for size in tensor.shape)


def preprocess_torch(images_u8: torch.Tensor, contract: PreprocessContract) -> torch.Tensor:
    """Crop and resize camera images in torch (exportable to ONNX; matches `preprocess_u8`).

    The resize is two matrix products with constant weights built from the input's static size, so
    an exported graph is specialised to one camera size (its batch axis may stay dynamic).

    Args:
        images_u8: (B, H, W, 3) uint8 RGB.
        contract: the preprocessing contract.

    Returns:
        (B, out_height, out_width, 3) uint8. Differs from `preprocess_u8` by at most 1 grey level per
        value; the same tensor (exact identity) when the crop already has the output size.
    """
    if not isinstance(images_u8, torch.Tensor):
        raise ValueError(f"preprocess_torch: expected a torch.Tensor, got {type(images_u8).__name__}")
    shape = static_shape(images_u8)
    check_images_u8(shape, images_u8.dtype == torch.uint8, images_u8.dtype, "preprocess_torch", False)
    height, width = shape[1:3]
    top, bottom = crop_box(height, width, contract)
    cropped = images_u8[:, top:bottom] if (top, bottom) != (0, height) else images_u8
    dst_hw = (contract.out_height, contract.out_width)
    if (bottom - top, width) == dst_hw:
        return cropped
    rows_np, cols_np = resize_weights((bottom - top, width), dst_hw)
    with warnings.catch_warnings():
        # Constants in an exported graph, as intended (see `static_shape`).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # type: ignore[attr-defined]  # no __all__
        rows = torch.from_numpy(rows_np).to(images_u8.device)
        cols = torch.from_numpy(cols_np).to(images_u8.device)
    x = cropped.to(torch.float32).permute(0, 3, 1, 2)  # (B, 3, h, W): matmul over the last two axes
    x = torch.matmul(torch.matmul(rows, x), cols.t())
    x = torch.round(x).clamp(0.0, 255.0)
    return x.to(torch.uint8).permute(0, 2, 3, 1).contiguous()


class Preprocess(nn.Module):
    """`preprocess_torch` as a module (for ONNX graphs): (B, H, W, 3) uint8 -> (B, 78, 200, 3) uint8."""

    def __init__(self, contract: PreprocessContract | None = None) -> None:
        super().__init__()
        self.contract = contract if contract is not None else PreprocessContract()

    def forward(self, images_u8: torch.Tensor) -> torch.Tensor:
        """Crop and resize; see `preprocess_torch`."""
        return preprocess_torch(images_u8, self.contract)


def standardize(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Per-image standardisation, as tf.image.per_image_standardization.

    Each image's H*W*3 values get zero mean and unit (population) standard deviation; the divisor is
    max(std, scale/sqrt(N)) so that a constant image maps to zeros instead of dividing by zero.

    Args:
        x: (B, 3, H, W) float, typically in [0, 1].
        scale: the unit of `x` (255: raw camera values), so that the result is `standardize(x / scale)`.

    Returns:
        (B, 3, H, W) float, same dtype.
    """
    if x.dim() != 4 or not torch.is_floating_point(x):
        raise ValueError(f"standardize: expected a (B, C, H, W) float tensor, got {tuple(x.shape)} {x.dtype}")
    num_elements = math.prod(static_shape(x)[1:])
    centred = x - x.mean(dim=(1, 2, 3), keepdim=True)
    std = centred.square().mean(dim=(1, 2, 3), keepdim=True).sqrt()
    return centred / std.clamp(min=scale / math.sqrt(num_elements))
