"""Gradient saliency from a maintained library (Captum): Grad-CAM and integrated gradients.

- `grad_cam` (Selvaraju et al. 2017) through `captum.attr.LayerGradCam`: for a scalar output y and a
  layer's activations A (B, K, h, w), the map is ReLU(Σ_k α_k A^k) with α_k the spatial mean of ∂y/∂A^k.
- `integrated_gradients` (Sundararajan et al. 2017) through `captum.attr.IntegratedGradients`: the
  path integral of ∂y/∂x from a baseline input to the input (Gauss-Legendre, `steps` points), summed
  over colour channels as |·| per pixel.

The project keeps no copy of either: Captum is the one place they are computed. VisualBackProp, which no
maintained library has, stays in `perception.saliency`. Every map comes back as (B, H, W) float32 in
[0, 1] at the network's input size, like VisualBackProp's, so the analyses treat all methods alike.

Captum is imported here only (lazily, inside the functions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from perception.saliency import normalize_01

ForwardFn = Callable[[torch.Tensor], torch.Tensor]
"""inputs (B, ...) -> (B,) one scalar per sample (e.g. the curvature of one control step)."""

IG_STEPS = 16
"""Integrated-gradients path points: 16 keeps the completeness error (Σ attributions vs
y(x) − y(baseline)) at a few per cent on the conv head, at 16 forward/backward passes per frame."""

IG_DISPLAY_QUANTILE = 0.99
"""Integrated-gradients maps are per-pixel and peaky: they are scaled so this quantile is 1 (clipped above),
so a map shows where the mass is rather than one pixel; the ranking of pixels is unchanged."""


def _captum_attr() -> Any:
    try:
        import captum.attr
    except ImportError as error:  # a core dependency; only a broken install lands here
        raise ImportError(
            "gradient saliency needs captum: pip install -e . (or pip install 'captum>=0.8')"
        ) from error
    return captum.attr


def _checked(forward_fn: ForwardFn, where: str) -> ForwardFn:
    """`forward_fn`, raising one clear error when it does not give one scalar per sample (no extra pass)."""

    def checked(inputs: torch.Tensor) -> torch.Tensor:
        out = forward_fn(inputs)
        if out.shape != (inputs.shape[0],):
            raise ValueError(
                f"{where}: forward_fn must return one scalar per sample, (B,), got {tuple(out.shape)}"
            )
        return out

    return checked


def grad_cam_layer(forward_fn: ForwardFn, layer: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Raw Grad-CAM at the layer's resolution (Captum's `LayerGradCam`, ReLU applied).

    Args:
        forward_fn: inputs -> (B,) scalar output. Samples must not interact (no batch statistics).
        layer: the module whose output is A (B, K, h, w); it must run inside `forward_fn`.
        inputs: (B, ...) float tensor `forward_fn` takes.

    Returns:
        (B, h, w) float32, ReLU(Σ_k α_k A^k), α_k = mean over (h, w) of ∂y/∂A^k; detached.
    """
    with torch.enable_grad():
        cam = (
            _captum_attr()
            .LayerGradCam(_checked(forward_fn, "grad_cam"), layer)
            .attribute(inputs, relu_attributions=True)
        )
    if cam.dim() != 4 or cam.shape[1] != 1:
        raise ValueError(f"grad_cam: the layer's output must be (B, K, h, w), got a map {tuple(cam.shape)}")
    raw: torch.Tensor = cam[:, 0].detach().float()
    return raw


def grad_cam(
    forward_fn: ForwardFn, layer: nn.Module, inputs: torch.Tensor, input_size: tuple[int, int]
) -> torch.Tensor:
    """Grad-CAM of a scalar output w.r.t. one layer, upsampled (bilinear) to the input size and min-max
    normalised per map. It shows what pushes the output *up*: for a signed output such as curvature,
    multiply the output by its sign to see what drives the decision actually taken.

    Args:
        forward_fn, layer, inputs: see `grad_cam_layer`.
        input_size: (H, W) of the returned maps, px.

    Returns:
        (B, H, W) float32 in [0, 1].
    """
    cam = grad_cam_layer(forward_fn, layer, inputs)
    up = F.interpolate(cam[:, None], size=input_size, mode="bilinear", align_corners=False)[:, 0]
    return normalize_01(up)


def integrated_gradients_raw(
    forward_fn: ForwardFn, inputs: torch.Tensor, baseline: torch.Tensor | None = None, steps: int = IG_STEPS
) -> torch.Tensor:
    """Integrated gradients (Captum), per input element.

    Args:
        forward_fn: inputs -> (B,) scalar output; called on batches of B·`steps` scaled inputs.
        inputs: (B, C, H, W) float.
        baseline: same shape as `inputs` (or broadcastable); None: zeros (for a standardised image: the
            image's own mean grey, i.e. no structure).
        steps: path points.

    Returns:
        (B, C, H, W) float32 attributions; they sum to about y(inputs) − y(baseline) per sample.
    """
    if steps < 2:
        raise ValueError(f"integrated_gradients: steps must be ≥ 2, got {steps}")
    base = torch.zeros_like(inputs) if baseline is None else baseline.expand_as(inputs)
    with torch.enable_grad():
        attributions = (
            _captum_attr()
            .IntegratedGradients(forward_fn)
            .attribute(inputs, baselines=base, n_steps=steps, method="gausslegendre")
        )
    result: torch.Tensor = attributions.detach().float()
    return result


def integrated_gradients(
    forward_fn: ForwardFn, inputs: torch.Tensor, baseline: torch.Tensor | None = None, steps: int = IG_STEPS
) -> torch.Tensor:
    """Integrated-gradients saliency: Σ_c |attribution| per pixel, scaled so its `IG_DISPLAY_QUANTILE`
    quantile is 1 (clipped above).

    Args:
        forward_fn, inputs, baseline, steps: see `integrated_gradients_raw`; inputs (B, C, H, W).

    Returns:
        (B, H, W) float32 in [0, 1] (all zeros where every attribution is 0).
    """
    if inputs.dim() != 4:
        raise ValueError(f"integrated_gradients: inputs must be (B, C, H, W), got {tuple(inputs.shape)}")
    magnitude = integrated_gradients_raw(forward_fn, inputs, baseline, steps).abs().sum(dim=1)
    scale = torch.quantile(magnitude.flatten(1), IG_DISPLAY_QUANTILE, dim=1)
    scale = torch.where(scale > 0, scale, magnitude.flatten(1).amax(dim=1)).clamp(min=torch.finfo().tiny)
    return (magnitude / scale[:, None, None]).clamp(0.0, 1.0)
