"""The policy as the trainer drives it: one forward over windows, and Adam's two parameter groups."""

from __future__ import annotations

from typing import Any

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


def param_groups(policy: DrivingPolicy, lr_head: float, lr_perception: float) -> list[dict[str, Any]]:
    """Adam's two groups: the perception's convolutions (`.convs`) and everything else.

    The paper lowers the learning rate of "the conv layers"; dense layers after them (the conv head's
    per-channel layers, the PilotNet's fully connected stack) and the recurrent head take `lr_head`.
    """
    convs = getattr(policy.perception, "convs", policy.perception)
    conv_ids = {id(p) for p in convs.parameters()}
    perception = [p for p in policy.parameters() if p.requires_grad and id(p) in conv_ids]
    head = [p for p in policy.parameters() if p.requires_grad and id(p) not in conv_ids]
    return [
        {"name": "perception", "params": perception, "lr": lr_perception},
        {"name": "head", "params": head, "lr": lr_head},
    ]
