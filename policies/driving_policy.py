"""The driving policy: camera preprocessing + perception CNN + recurrent head, as a pure function of state.

    image (B, H, W, 3) uint8 ─ preprocess ─► (B, 78, 200, 3) uint8 ─ standardise ─► (B, 3, 78, 200)
        [+ input noise] ─ perception ─► features (B, F)
        ─ head.step(features, state) ─► (y (B, 1), state') ─ × curvature_scale_1pm ─► curvature (B,) 1/m

The policy never holds recurrent state: `step` takes it and returns the next one; `PolicyRunner`
(drive/) is the only object that keeps it across frames, and the ONNX export is this same `step` with
the state as explicit input and output. What callers look at between the stages (the saliency maps,
the neuron activity, noise on the network input, the optimiser's parameter groups) is asked of the
policy here, so nothing outside `policies/` reaches into the perception or the head.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from perception.feature_net import FeatureMapNet
from perception.feature_norm import FEATURE_NORMS
from perception.preprocess import PreprocessContract
from perception.tensor_preprocess import Preprocess
from policies.head import RecurrentHead
from policies.wiring import Wiring


@dataclass(frozen=True)
class PolicyConfig:
    """How to build a policy from the registry.

    Attributes:
        name: registry name (`ncp-ltc`, `ncp-cfc`, `lstm`, `ctrnn`, `cnn`, `fc-ltc`, `random-ltc`).
        wiring_seed: seed of the NCP / random wiring.
        ode_unfolds: LTC solver unfolds per step (the paper: 6).
        cfc_mode: CfC mode: `default`, `no_gate` or `pure`.
        units: neurons of the LSTM / CT-RNN baselines (the paper: 64).
        sensory_norm: how the conv head's 32 features enter the NCP heads (`ncp-ltc`, `ncp-cfc`,
            `fc-ltc`, `random-ltc`): `batch` (default) standardises each feature over frames to mean
            0.5, std 0.5, the LTC sensory sigmoids' operating range (perception.feature_norm.FeatureNorm:
            batch moments in training, their running averages in eval); `paper` passes the raw ReLU
            features as the paper does, bit for bit as this code did before the switch, which is
            seed-fragile: training can stall at the zero predictor (README). The LSTM / CT-RNN / CNN
            baselines ignore it. Checkpoints saved without the key load as `paper`.
        curvature_scale_1pm: the head's unit output is this many 1/m, so the network works at O(1).
        crop_top_frac, crop_bottom_frac: the preprocessing crop of the camera image (PreprocessContract).
        camera_height, camera_width: the camera image the policy takes, px (resized to 78x200 inside).
    """

    name: str = "ncp-ltc"
    wiring_seed: int = 22222
    ode_unfolds: int = 6
    cfc_mode: str = "default"
    units: int = 64
    sensory_norm: str = "batch"
    curvature_scale_1pm: float = 0.05
    crop_top_frac: float = 0.0
    crop_bottom_frac: float = 0.0
    camera_height: int = 78
    camera_width: int = 200

    def __post_init__(self) -> None:
        if self.sensory_norm not in FEATURE_NORMS:
            raise ValueError(f"policy.sensory_norm must be one of {FEATURE_NORMS}, got {self.sensory_norm!r}")
        if not self.curvature_scale_1pm > 0:  # 0 would make every output 0 and every gradient vanish
            raise ValueError(f"curvature_scale_1pm must be > 0, got {self.curvature_scale_1pm}")

    @property
    def contract(self) -> PreprocessContract:
        return PreprocessContract(crop_top_frac=self.crop_top_frac, crop_bottom_frac=self.crop_bottom_frac)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepInspection:
    """One control step with what the interpretability and robustness analyses look at.

    Attributes:
        curvature_1pm: (B,) float32 commanded road curvature, 1/m, left positive.
        state: (B, state_size) the next recurrent state.
        activity: (B, units) neuron activity: the head's neurons in the next state, or, for a policy
            without recurrent state (the CNN), the perception's last hidden layer.
        saliency: (B, 78, 200) float32 VisualBackProp map in [0, 1], or None when not asked for.
    """

    curvature_1pm: torch.Tensor
    state: torch.Tensor
    activity: torch.Tensor
    saliency: torch.Tensor | None


class DrivingPolicy(nn.Module):
    """Perception + recurrent head, mapping camera frames to road curvature (1/m, left positive).

    Args:
        config: the registry config that built it (kept for checkpoints and export metadata).
        perception: a `perception.feature_net.FeatureMapNet`: (B, 78, 200, 3) uint8 -> (B, F) float,
            in stages (standardised input, feature maps, features and last hidden layer).
        head: a `RecurrentHead` module (policies/head.py) taking the F features.

    Raises:
        TypeError: the head is not a module implementing `RecurrentHead`.
    """

    def __init__(self, config: PolicyConfig, perception: FeatureMapNet, head: RecurrentHead) -> None:
        super().__init__()
        if not isinstance(head, nn.Module) or not isinstance(head, RecurrentHead):
            raise TypeError(
                f"policy {config.name!r}: the head must be a torch module implementing "
                f"policies.head.RecurrentHead, got {type(head).__name__}"
            )
        self.config = config
        self.preprocess = Preprocess(config.contract)
        self.perception: FeatureMapNet = perception
        self.head: RecurrentHead = head
        self.curvature_scale_1pm = float(config.curvature_scale_1pm)

    @property
    def state_size(self) -> int:
        """Width of the flat recurrent state (0 for the feed-forward CNN)."""
        return int(self.head.state_size)

    @property
    def wiring(self) -> Wiring | None:
        """The head's wiring, or None for heads without one (LSTM, CT-RNN, CNN)."""
        wiring: Wiring | None = getattr(self.head, "wiring", None)
        return wiring

    @property
    def has_feature_maps(self) -> bool:
        """Whether the perception exposes conv feature maps (what VisualBackProp needs)."""
        return hasattr(self.perception, "maps_from_standardized")

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Zero state, (B, state_size) float32 (the paper's zero initial state)."""
        return self.head.initial_state(batch, device=device)

    def network_input(self, images_u8: torch.Tensor, input_noise: torch.Tensor | None = None) -> torch.Tensor:
        """The perception's input: camera frames cropped, resized and standardised per image, plus noise.

        Args:
            images_u8: (B, H, W, 3) uint8 RGB camera frames (the config's camera size).
            input_noise: None, or (B, 78, 200, 3) float32 added to the standardised image (channels last,
                like the image; units: standard deviations of the image's own values).

        Returns:
            (B, 3, 78, 200) float32 (channels first, as the convolutions take it).

        Raises:
            ValueError: the noise does not match the network input's shape or is not floating point.
        """
        return self.perception.standardized_input(self.preprocess(images_u8), input_noise)

    def features(self, images_u8: torch.Tensor, input_noise: torch.Tensor | None = None) -> torch.Tensor:
        """(B, H, W, 3) uint8 camera frames -> (B, F) sensory features (`input_noise`: `network_input`)."""
        # Through the perception module's own call, so an exported graph names these ops `/perception/`.
        features: torch.Tensor = self.perception(self.preprocess(images_u8), input_noise)
        return features

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
        self,
        images_u8: torch.Tensor,
        state: torch.Tensor,
        elapsed_s: float | torch.Tensor = 1.0,
        input_noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One control step.

        Args:
            images_u8: (B, H, W, 3) uint8 RGB camera frames (the config's camera size).
            state: (B, state_size) float32.
            elapsed_s: elapsed time in control periods (1.0 = one step), scalar or (B,).
            input_noise: None, or (B, 78, 200, 3) float32 added to the standardised input (`network_input`).

        Returns:
            curvature (B,) float32 in 1/m, and the next state (B, state_size).
        """
        y, state = self.head.step(self.features(images_u8, input_noise), state, elapsed_s)
        return y[:, 0] * self.curvature_scale_1pm, state

    def inspect_step(
        self,
        images_u8: torch.Tensor,
        state: torch.Tensor,
        elapsed_s: float | torch.Tensor = 1.0,
        input_noise: torch.Tensor | None = None,
        saliency: bool = False,
    ) -> StepInspection:
        """`step`, also giving the neuron activity and, if asked, the VisualBackProp saliency.

        Same arguments as `step`; `saliency` computes the (B, 78, 200) map from the feature maps of this
        very pass. The curvature and state equal `step`'s bit for bit.

        Raises:
            ValueError: saliency asked of a perception without feature maps.
        """
        if saliency and not self.has_feature_maps:
            raise ValueError(f"policy {self.config.name!r}: its perception has no feature maps for saliency")
        x = self.network_input(images_u8, input_noise)
        maps = self.perception.maps_from_standardized(x)
        features, last_hidden = self.perception.features_and_hidden_from_map(maps[-1])
        y, state = self.head.step(features, state, elapsed_s)
        # A policy without recurrent state has no neurons of its own: the paper analysed the CNN's last
        # hidden layer in their place.
        activity = self.head.hidden_activity(state) if self.state_size > 0 else last_hidden
        saliency_map = None
        if saliency:
            from perception.saliency import visual_backprop

            saliency_map = visual_backprop(maps, (int(x.shape[2]), int(x.shape[3])))
        return StepInspection(y[:, 0] * self.curvature_scale_1pm, state, activity, saliency_map)

    def step_with_saliency(
        self,
        images_u8: torch.Tensor,
        state: torch.Tensor,
        elapsed_s: float | torch.Tensor = 1.0,
        input_noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`step` plus the VisualBackProp saliency of its feature maps.

        Returns:
            curvature (B,) in 1/m, the next state (B, state_size), saliency (B, 78, 200) float32 in [0, 1].
        """
        out = self.inspect_step(images_u8, state, elapsed_s, input_noise, saliency=True)
        assert out.saliency is not None  # asked for above
        return out.curvature_1pm, out.state, out.saliency

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
        """The head's neuron activity (B, units) in a state (empty for the CNN; see `inspect_step`)."""
        return self.head.hidden_activity(state)

    def forward(self, images_u8: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Same as `step` (so the module exports and traces as one control step)."""
        return self.step(images_u8, state)

    def parameter_groups(self, lr_head: float, lr_perception: float) -> list[dict[str, Any]]:
        """Adam's two groups: the perception's convolutions (`.convs`) and everything else.

        The paper lowers the learning rate of "the conv layers"; dense layers after them (the conv head's
        per-channel layers, the PilotNet's fully connected stack) and the recurrent head take `lr_head`.

        Returns:
            [{"name": "perception", "params": [...], "lr": lr_perception},
             {"name": "head", "params": [...], "lr": lr_head}], trainable parameters only.
        """
        convs = getattr(self.perception, "convs", self.perception)
        conv_ids = {id(p) for p in convs.parameters()}
        perception = [p for p in self.parameters() if p.requires_grad and id(p) in conv_ids]
        head = [p for p in self.parameters() if p.requires_grad and id(p) not in conv_ids]
        return [
            {"name": "perception", "params": perception, "lr": lr_perception},
            {"name": "head", "params": head, "lr": lr_head},
        ]

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters of the perception and of the head."""

        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters() if p.requires_grad)

        head = self.head
        assert isinstance(head, nn.Module)  # checked in __init__: every head is a module
        return {"perception": count(self.perception), "head": count(head), "total": count(self)}
