"""A per-feature norm of the conv head's 32 sensory features into the LTC sigmoids' operating range.

Not in the paper (`policy.sensory_norm: paper` switches it off, bit for bit the earlier behaviour); the
NCP policies use it by default because without it their training is seed-fragile (README, "The NCP's
training plateau").
"""

from __future__ import annotations

import torch
from torch import nn

FEATURE_NORMS = ("paper", "batch")
"""How `ConvHead` hands its 32 features on: `paper` as they come out of the ReLUs (the paper, and this
code before the switch existed); `batch` standardised per feature (`FeatureNorm`)."""

SENSORY_CENTRE = 0.5
"""Mean of the normalised features: the middle of the LTC sensory midpoints' init range (0.3, 0.8)."""

SENSORY_SPREAD = 0.5
"""Standard deviation of the normalised features over frames: with steepness σ in (3, 8) a sensory
sigmoid's argument σ·(u − μ) then moves by about ±1.5..±4 from frame to frame, the graded part of the
sigmoid (the input map calibration, `LTC.calibrate_input_map`, aims at the same 0.5 / 0.5)."""


class FeatureNorm(nn.Module):
    """Per-feature standardisation of the sensory features into the LTC sigmoids' operating range.

    u = 0.5 + 0.5·(x − m) / sqrt(v + eps), m and v each feature's mean and variance over frames: a batch
    norm without affine parameters (the LTC's input map u·a + b is the affine part). Why: the sensory
    synapses are sigmoids with midpoints 0.3-0.8 and steepness 3-8, so they respond to inputs in about
    [0, 1]. Raw ReLU features have a seed-dependent scale (std over frames 0.18-0.36 at init on the demo
    drives) that the first Adam steps inflate until most ReLUs die and the sigmoids saturate: the head's
    state stops depending on the image (the zero-predictor plateau).

    In training, m and v are the batch's moments and the gradient flows through them: that makes the
    loss blind to the features' scale and offset, which is what keeps the ReLUs alive (measured: with
    the same map but constant m, v the features die as without it). Running averages of them
    (`momentum`; the first training batch sets them) are used in eval mode, where the map is a fixed
    affine op: `step` exports to ONNX as is. Put the policy in eval mode to drive it. Under
    torch.distributed the moments are summed over the ranks (differentiably, as SyncBatchNorm does on
    CUDA only), so N ranks compute the one-process gradient of the global batch.

    Args:
        features: F, the number of features.
        momentum: weight of each new training batch in the running moments.
        eps: added to the variance, so a constant (dead) feature maps to 0.5.
    """

    # Buffers registered by name; declared for type checkers, to which nn.Module's __getattr__ says
    # only `Tensor | Module`.
    running_mean: torch.Tensor
    running_var: torch.Tensor
    batches_tracked: torch.Tensor

    def __init__(self, features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))
        self.register_buffer("batches_tracked", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F) -> (B, F) float32: each feature mapped to mean 0.5, std 0.5 over the batch (training)
        or over the tracked frames (eval)."""
        x = x.float()  # under bf16 autocast too: the moments and their gradients need float32
        if self.training:
            mean, var = _global_moments(x)
            self._track(mean.detach(), var.detach())
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) * (torch.rsqrt(var + self.eps) * SENSORY_SPREAD) + SENSORY_CENTRE

    @torch.no_grad()
    def _track(self, mean: torch.Tensor, var: torch.Tensor) -> None:
        # The first batch sets the moments (weight 1); as a tensor, so CUDA steps do not sync on it.
        weight = 1.0 - (1.0 - self.momentum) * (self.batches_tracked > 0).to(mean.dtype)
        self.running_mean.lerp_(mean, weight)
        self.running_var.lerp_(var, weight)
        self.batches_tracked += 1


def make_feature_norm(mode: str, features: int) -> nn.Module:
    """The module for a `FEATURE_NORMS` mode over F = `features`: `paper` nn.Identity, `batch` FeatureNorm.

    Raises:
        ValueError: an unknown mode.
    """
    if mode not in FEATURE_NORMS:
        raise ValueError(f"feature_norm must be one of {FEATURE_NORMS}, got {mode!r}")
    return nn.Identity() if mode == "paper" else FeatureNorm(features)


def _global_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and (biased) variance of (B, F) `x` over the batches of all ranks: (F,), (F,)."""
    sums = torch.cat([x.sum(0), (x * x).sum(0), x.new_full((1,), float(x.shape[0]))])
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        from torch.distributed.nn.functional import all_reduce  # differentiable: gradients sum back

        sums = all_reduce(sums)
    f = x.shape[1]
    mean = sums[:f] / sums[-1]
    return mean, (sums[f : 2 * f] / sums[-1] - mean * mean).clamp_min(0.0)
