"""Where a driving policy looks, by any of the saliency methods, and whether the map is faithful.

A control step is turned into a function of the network input alone, (B, 3, 78, 200) standardised image
-> (B,) curvature, with the recurrent state the step started from held fixed (`StepOnInput`). The
methods then see an ordinary image model:

- `visual_backprop`: the project's own (perception.saliency), from the conv feature maps;
- `grad_cam`: Captum's Grad-CAM at the deepest conv feature map (post-ReLU), for the curvature times its
  sign in this step, i.e. what drives the steering the policy actually chose (left or right);
- `integrated_gradients`: Captum's, from the all-grey input (0 after standardisation).

`faithfulness` runs the deletion/insertion test (perception.faithfulness) of each map on the same step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from perception.faithfulness import FaithfulnessCurves, deletion_insertion
from perception.saliency_methods import check_methods
from policies.driving_policy import DrivingPolicy


class StepOnInput(nn.Module):
    """One control step as a function of the standardised input, the state held fixed.

    Args:
        policy: the policy (its perception must have feature maps).
        state: (B0, state_size) the state the step starts from; an input batch of N = k·B0 samples
            (Captum's path points, the faithfulness test's perturbed copies) repeats it k times, in the
            sample-major order `torch.Tensor.repeat` gives (sample i uses state i mod B0).
        sign: None, or (B0,) ±1 to multiply the curvature by (Grad-CAM of the chosen direction).

    `tap` is an identity module on the deepest post-ReLU feature map (Grad-CAM's layer).
    """

    def __init__(self, policy: DrivingPolicy, state: torch.Tensor, sign: torch.Tensor | None = None) -> None:
        super().__init__()
        if not policy.has_feature_maps:
            raise ValueError(
                f"policy {policy.config.name!r}: its perception has no feature maps for saliency"
            )
        self.policy = policy
        self.state = state
        self.sign = sign
        self.tap = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 78, 200) standardised input -> (N,) curvature, 1/m (times `sign` when given)."""
        b0 = self.state.shape[0]
        if x.shape[0] % b0:
            raise ValueError(f"StepOnInput: batch {x.shape[0]} is not a multiple of the state's {b0}")
        reps = x.shape[0] // b0
        perception = self.policy.perception
        deepest = self.tap(perception.maps_from_standardized(x)[-1])
        features, _ = perception.features_and_hidden_from_map(deepest)
        y, _ = self.policy.head.step(features, self.state.repeat(reps, 1), 1.0)
        curvature = y[:, 0] * self.policy.curvature_scale_1pm
        return curvature * self.sign.repeat(reps) if self.sign is not None else curvature


def saliency_maps(
    policy: DrivingPolicy,
    images_u8: torch.Tensor,
    state: torch.Tensor,
    methods: Sequence[str],
    input_noise: torch.Tensor | None = None,
    curvature_1pm: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Each method's map of one control step.

    Args:
        policy: the policy, in eval mode.
        images_u8: (B, H, W, 3) uint8 camera frames.
        state: (B, state_size) the state the step starts from.
        methods: names from `SALIENCY_METHODS`.
        input_noise: None, or (B, 78, 200, 3) standardised-space noise (as `DrivingPolicy.step`).
        curvature_1pm: (B,) this step's curvature when the caller has it (its sign orients Grad-CAM);
            None: computed here.

    Returns:
        method -> (B, 78, 200) float32 in [0, 1].
    """
    from perception.attribution import grad_cam, integrated_gradients
    from perception.saliency import visual_backprop

    check_methods(methods)
    x = policy.network_input(images_u8, input_noise).detach()
    size = (int(x.shape[2]), int(x.shape[3]))
    state = state.detach()
    out: dict[str, torch.Tensor] = {}
    for method in methods:
        if method == "visual_backprop":
            with torch.no_grad():
                out[method] = visual_backprop(policy.perception.maps_from_standardized(x), size)
        elif method == "grad_cam":
            if curvature_1pm is None:
                with torch.no_grad():
                    curvature_1pm = StepOnInput(policy, state)(x)
            sign = torch.where(curvature_1pm.detach().reshape(-1) < 0, -1.0, 1.0)
            step = StepOnInput(policy, state, sign)
            out[method] = grad_cam(step, step.tap, x.clone().requires_grad_(True), size)
        else:
            out[method] = integrated_gradients(StepOnInput(policy, state), x)
    return out


def faithfulness(
    policy: DrivingPolicy,
    images_u8: torch.Tensor,
    state: torch.Tensor,
    maps: dict[str, torch.Tensor],
    input_noise: torch.Tensor | None = None,
    seed: int = 0,
) -> dict[str, FaithfulnessCurves]:
    """The deletion/insertion test of each map on one control step (perception.faithfulness).

    Args:
        policy, images_u8, state, input_noise: as `saliency_maps`.
        maps: method -> (B, 78, 200) maps of these frames.
        seed: the random rankings' seed (the same for every method, so they share the reference).

    Returns:
        method -> curves of |Δ curvature| (1/m) for the B frames.
    """
    import numpy as np

    x = policy.network_input(images_u8, input_noise).detach()
    state = state.detach()
    per_frame: dict[str, list[FaithfulnessCurves]] = {method: [] for method in maps}
    for i in range(x.shape[0]):  # one frame at a time: its state repeats over the perturbed copies
        step = StepOnInput(policy, state[i : i + 1])
        for method, m in maps.items():
            per_frame[method].append(deletion_insertion(step, x[i : i + 1], m[i : i + 1], seed=seed + i))
    return {
        method: FaithfulnessCurves(
            fractions=curves[0].fractions,
            **{
                name: np.concatenate([getattr(c, name) for c in curves])
                for name in ("deletion", "deletion_random", "insertion", "insertion_random")
            },
        )
        for method, curves in per_frame.items()
    }
