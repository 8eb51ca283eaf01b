"""The driving policy: camera preprocessing + perception CNN + recurrent head, as a pure function of state.

    image (B, H, W, 3) uint8 ─ preprocess ─► (B, 78, 200, 3) ─ perception ─► features (B, F)
        ─ head.step(features, state) ─► (y (B, 1), state') ─ × curvature_scale_1pm ─► curvature (B,) 1/m

The policy never holds recurrent state: `step` takes it and returns the next one; `PolicyRunner`
(drive/) is the only object that keeps it across frames, and the ONNX export is this same `step` with
the state as explicit input and output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from perception.preprocess import PreprocessContract
from perception.tensor_preprocess import Preprocess


@dataclass(frozen=True)
class PolicyConfig:
    """How to build a policy from the registry.

    Attributes:
        name: registry name (`ncp-ltc`, `ncp-cfc`, `lstm`, `ctrnn`, `cnn`, `fc-ltc`, `random-ltc`).
        wiring_seed: seed of the NCP / random wiring.
        ode_unfolds: LTC solver unfolds per step (the paper: 6).
        cfc_mode: CfC mode: `default`, `no_gate` or `pure`.
        units: neurons of the LSTM / CT-RNN baselines (the paper: 64).
        curvature_scale_1pm: the head's unit output is this many 1/m, so the network works at O(1).
        crop_top_frac, crop_bottom_frac: the preprocessing crop of the camera image (PreprocessContract).
        camera_height, camera_width: the camera image the policy takes, px (resized to 78x200 inside).
    """

    name: str = "ncp-ltc"
    wiring_seed: int = 22222
    ode_unfolds: int = 6
    cfc_mode: str = "default"
    units: int = 64
    curvature_scale_1pm: float = 0.05
    crop_top_frac: float = 0.0
    crop_bottom_frac: float = 0.0
    camera_height: int = 78
    camera_width: int = 200

    @property
    def contract(self) -> PreprocessContract:
        return PreprocessContract(crop_top_frac=self.crop_top_frac, crop_bottom_frac=self.crop_bottom_frac)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyConfig:
        """Strict inverse of `to_dict`: an unknown key is an error naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"policy config: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


class DrivingPolicy(nn.Module):
    """Perception + recurrent head, mapping camera frames to road curvature (1/m, left positive).

    Args:
        config: the registry config that built it (kept for checkpoints and export metadata).
        perception: (B, 78, 200, 3) uint8 -> (B, F) float module.
        head: a recurrent head (policies/ltc.py, cfc.py, baselines.py, stateless.py protocol).
    """

    def __init__(self, config: PolicyConfig, perception: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.preprocess = Preprocess(config.contract)
        self.perception = perception
        self.head = head
        self.curvature_scale_1pm = float(config.curvature_scale_1pm)

    @property
    def state_size(self) -> int:
        """Width of the flat recurrent state (0 for the feed-forward CNN)."""
        return int(self.head.state_size)

    @property
    def wiring(self):
        """The head's wiring, or None for heads without one (LSTM, CT-RNN, CNN)."""
        return getattr(self.head, "wiring", None)

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Zero state, (B, state_size) float32 (the paper's zero initial state)."""
        return self.head.initial_state(batch, device=device)

    def features(self, images_u8: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 camera frames -> (B, F) sensory features."""
        return self.perception(self.preprocess(images_u8))

    @torch.no_grad()
    def calibrate_input_map(self, images_u8: torch.Tensor) -> None:
        """Set the head's input map from the features of `images_u8` (B, H, W, 3) uint8 (LTC heads).

        Raises:
            ValueError: the head has no input map to calibrate.
        """
        calibrate = getattr(self.head, "calibrate_input_map", None)
        if calibrate is None:
            raise ValueError(
                f"policy {self.config.name!r}: its head has no input map to calibrate (LTC heads do)"
            )
        calibrate(self.features(images_u8))

    def step(
        self, images_u8: torch.Tensor, state: torch.Tensor, elapsed_s: float | torch.Tensor = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One control step.

        Args:
            images_u8: (B, H, W, 3) uint8 RGB camera frames (the config's camera size).
            state: (B, state_size) float32.
            elapsed_s: elapsed time in control periods (1.0 = one step), scalar or (B,).

        Returns:
            curvature (B,) float32 in 1/m, and the next state (B, state_size).
        """
        y, state = self.head.step(self.features(images_u8), state, elapsed_s)
        return y[:, 0] * self.curvature_scale_1pm, state

    def forward_sequence(
        self,
        images_u8: torch.Tensor,
        state: torch.Tensor | None = None,
        timespans: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole sequence (training): perception over every frame at once, then the head's loop.

        Args:
            images_u8: (B, T, H, W, 3) uint8 RGB.
            state: (B, state_size) or None for zeros.
            timespans: (B, T) elapsed control periods per step, or None for ones.

        Returns:
            curvatures (B, T) in 1/m, and the final state.
        """
        if images_u8.dim() != 5:
            raise ValueError(
                f"forward_sequence: expected (B, T, H, W, 3) uint8, got {tuple(images_u8.shape)}"
            )
        b, t = images_u8.shape[:2]
        feats = self.features(images_u8.reshape(b * t, *images_u8.shape[2:])).reshape(b, t, -1)
        y, state = self.head.forward_sequence(feats, state, timespans)
        return y[..., 0] * self.curvature_scale_1pm, state

    def hidden_activity(self, state: torch.Tensor) -> torch.Tensor:
        """Neuron activity (B, units) in a state, for interpretability (empty for the CNN)."""
        return self.head.hidden_activity(state)

    def forward(self, images_u8: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Same as `step` (so the module exports and traces as one control step)."""
        return self.step(images_u8, state)

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters of the perception and of the head."""
        count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
        return {"perception": count(self.perception), "head": count(self.head), "total": count(self)}
