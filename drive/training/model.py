"""The policy as the trainer drives it: one forward over windows (Adam's parameter groups are the
policy's own: `DrivingPolicy.parameter_groups`)."""

from __future__ import annotations

import torch
from torch import nn

from policies.driving_policy import DrivingPolicy


class SequenceModel(nn.Module):
    """The policy as `forward(frames) -> curvature`, so DDP sees a forward() (it syncs gradients there).

    The perception runs under bfloat16 autocast when `amp_bf16` is on and the module is in training mode;
    the recurrent head always runs in float32 (its ODE solver divides by sums of conductances, which
    bfloat16's 8-bit mantissa spoils). In eval mode (validation) everything is float32, as the exported
    policy runs, so validation metrics mean the same with and without bf16 training.
    This is `DrivingPolicy.forward_sequence` from the zero state, with that precision split.
    """

    def __init__(self, policy: DrivingPolicy, amp_bf16: bool = False) -> None:
        super().__init__()
        self.policy = policy
        self.amp_bf16 = amp_bf16

    def forward(self, frames_u8: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, 3) uint8 -> (B, T) float32 curvature, 1/m."""
        if frames_u8.dim() != 5:
            raise ValueError(f"training windows must be (B, T, H, W, 3) uint8, got {tuple(frames_u8.shape)}")
        b, t = frames_u8.shape[:2]
        device_type = frames_u8.device.type
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.amp_bf16 and self.training):
            features = self.policy.features(frames_u8.reshape(b * t, *frames_u8.shape[2:]))
        y, _ = self.policy.head.forward_sequence(features.float().reshape(b, t, -1))
        return y[..., 0].float() * self.policy.curvature_scale_1pm
