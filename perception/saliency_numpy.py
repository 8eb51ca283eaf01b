"""VisualBackProp in numpy, from the channel means of the feature maps: the saliency of an exported graph.

An exported diagnostics graph (`drive.export.graphs.DiagnosticsGraph`) gives each convolution's post-ReLU
map averaged over its channels; this turns them into the (H, W) map `perception.saliency.visual_backprop`
would give, without torch (an evaluation worker of the onnx engine never imports it).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def visual_backprop_from_means(
    channel_means: Sequence[np.ndarray], input_size: tuple[int, int]
) -> np.ndarray:
    """`visual_backprop` of one frame from its maps' channel means, in numpy (what an exported diagnostics
    graph gives: `drive.export.graphs.DiagnosticsGraph`); equal to the torch version to float rounding
    (cv2's INTER_LINEAR resize is the half-pixel bilinear interpolation of `perception.saliency._upsample`).

    Args:
        channel_means: shallow to deep, each (h, w) or (1, h, w): a convolution's post-ReLU map averaged
            over its channels.
        input_size: (H, W) of the network input, px.

    Returns:
        (H, W) float32 in [0, 1].
    """
    height, width = _size(input_size)
    if len(channel_means) == 0:
        raise ValueError("visual_backprop_from_means: channel_means is empty")
    tiny = np.finfo(np.float32).tiny
    averages = []
    for index, mean in enumerate(channel_means):
        plane = np.asarray(mean, np.float32)
        plane = plane[0] if plane.ndim == 3 and plane.shape[0] == 1 else plane
        if plane.ndim != 2:
            raise ValueError(
                f"visual_backprop_from_means: channel_means[{index}] must be (h, w), got {np.shape(mean)}"
            )
        averages.append(plane / max(float(plane.max()), tiny))

    def resize(plane: np.ndarray, rows: int, cols: int) -> np.ndarray:
        if plane.shape == (rows, cols):
            return plane
        resized: np.ndarray = cv2.resize(plane, (cols, rows), interpolation=cv2.INTER_LINEAR)
        return resized

    mask = averages[-1]
    for shallower in reversed(averages[:-1]):
        mask = resize(mask, *shallower.shape) * shallower
    mask = resize(mask, height, width)
    low = float(mask.min())
    span = max(float(mask.max()) - low, tiny)
    out: np.ndarray = np.clip((mask - low) / span, 0.0, 1.0).astype(np.float32)
    return out


def _size(input_size: tuple[int, int]) -> tuple[int, int]:
    if len(input_size) != 2 or any(int(s) != s or s <= 0 for s in input_size):
        raise ValueError(
            f"visual_backprop_from_means: input_size must be (height, width), got {input_size!r}"
        )
    return int(input_size[0]), int(input_size[1])
