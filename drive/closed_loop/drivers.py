"""Drivers: what turns an observation into a curvature command in the closed loop.

- `ExpertDriver`: follows the simulator's expert label (`info["expert_curvature_1pm"]`, computed by
  `sim.expert.PurePursuitExpert`), plus recovery perturbations of the *executed*
  command (the label stays the expert's own command) — used to record training drives.
- `PolicyRunner`: a trained `DrivingPolicy`; the only object that holds its recurrent state between
  frames (`reset()` zeroes it). Optionally computes a saliency map per frame (VisualBackProp, Grad-CAM or
  integrated gradients, `policies.policy_saliency`); adds the
  observation's `input_noise` (standardised-space noise), when it has one, to the network input.

Every driver has `name`, `reset(seed)`, `act(obs, info) -> curvature_1pm`, and `hidden_state` /
`saliency` (the last step's neuron activity and saliency map, or None).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from sim.expert import PerturbationConfig, RecoveryPerturbation
from sim.types import Observation

if TYPE_CHECKING:  # torch is imported lazily: `import drive` must not pull it in
    import torch

    from policies.driving_policy import DrivingPolicy


class Driver(Protocol):
    name: str
    hidden_state: np.ndarray | None
    saliency: np.ndarray | None

    def reset(self, seed: int) -> None: ...

    def act(self, obs: Observation, info: dict[str, Any]) -> float: ...


class ExpertDriver:
    """The expert's curvature from `info`, plus an optional recovery perturbation timed in sim time.

    Args:
        perturbation: pulse ranges of the recovery perturbation; None drives the clean expert.
    """

    name = "expert"
    # Always None for the expert; typed as the `Driver` protocol has them.
    hidden_state: np.ndarray | None = None
    saliency: np.ndarray | None = None

    def __init__(self, perturbation: PerturbationConfig | None = None) -> None:
        self.perturbation = perturbation
        self._schedule = RecoveryPerturbation(perturbation) if perturbation is not None else None

    def reset(self, seed: int) -> None:
        if self._schedule is not None:
            # A stream of its own, so the schedule does not depend on how the simulator used its seed.
            self._schedule.reset(np.random.default_rng((int(seed), 0xE7)))

    def act(self, obs: Observation, info: dict[str, Any]) -> float:
        label = float(info["expert_curvature_1pm"])
        if self._schedule is None:
            return label
        return label + self._schedule.offset_1pm(float(obs.timestamp_s))


class PolicyRunner:
    """Runs a `DrivingPolicy` frame by frame, holding its recurrent state.

    Args:
        policy: the policy (put in eval mode here).
        device: torch device for inference.
        saliency: None, or a method of `perception.saliency_methods.SALIENCY_METHODS` to compute a
            (78, 200) map in [0, 1] per frame (policies whose perception has feature maps only).
        name: label for reports (default: the policy's registry name).
    """

    def __init__(
        self, policy: DrivingPolicy, device: str = "cpu", saliency: str | None = None, name: str | None = None
    ) -> None:
        import torch

        self._torch = torch
        self.policy = policy.to(device).eval()
        self.device = torch.device(device)
        self.name = name or policy.config.name
        from perception.saliency_methods import SALIENCY_METHODS

        if saliency is not None and saliency not in SALIENCY_METHODS:
            raise ValueError(f"saliency must be None or one of {SALIENCY_METHODS}, got {saliency!r}")
        if saliency and not policy.has_feature_maps:
            raise ValueError(f"policy {self.name!r} has no feature maps for saliency")
        self.saliency_method = saliency
        self._state: torch.Tensor | None = None
        self.hidden_state: np.ndarray | None = None
        self.saliency: np.ndarray | None = None

    def reset(self, seed: int = 0) -> None:
        """Zero the recurrent state (a new episode)."""
        self._state = self.policy.initial_state(1, device=self.device)
        self.hidden_state = None
        self.saliency = None

    def state_array(self) -> np.ndarray:
        """(1, state_size) float32 copy of the state the next step starts from (zeros before any)."""
        if self._state is None:
            self.reset()
        assert self._state is not None  # for mypy: reset() set it
        state: np.ndarray = self._state.float().cpu().numpy().copy()
        return state

    def act(self, obs: Observation, info: dict[str, Any] | None = None) -> float:
        """Curvature (1/m) for the camera frame `obs.image` (H, W, 3) uint8.

        Also sets `hidden_state` (the policy's neuron activity, see `DrivingPolicy.inspect_step`) and,
        with saliency on, `saliency` (78, 200) float32 in [0, 1]. `info["policy_elapsed_periods"]`, when
        given (`drive.closed_loop.deployment_wrappers.DeploymentDriver`), is the time since the previous
        frame in control periods, which continuous-time heads integrate over (default 1.0).
        """
        torch = self._torch
        if self._state is None:
            self.reset()
        assert self._state is not None  # for mypy: reset() set it
        image = torch.from_numpy(np.ascontiguousarray(obs.image)).to(self.device).unsqueeze(0)
        noise = getattr(obs, "input_noise", None)  # an optional Observation field
        if noise is not None:
            noise = torch.from_numpy(np.asarray(noise, dtype=np.float32)).to(self.device)
            noise = noise.unsqueeze(0) if noise.dim() == 3 else noise
        method = self.saliency_method
        gradient = method is not None and method != "visual_backprop"
        # gradient methods cannot use an inference tensor: a normal copy of the state the step starts from
        state = self._state.clone() if gradient else self._state
        with torch.inference_mode():
            elapsed = float((info or {}).get("policy_elapsed_periods", 1.0))
            out = self.policy.inspect_step(
                image, self._state, elapsed, input_noise=noise, saliency=method == "visual_backprop"
            )
            self._state = out.state
            if out.saliency is not None:
                self.saliency = out.saliency[0].cpu().numpy()
            self.hidden_state = out.activity[0].float().cpu().numpy()
        if gradient:
            # autograd runs outside inference mode, from the state this step started from
            from policies.policy_saliency import saliency_maps

            curvature = out.curvature_1pm.clone()
            assert method is not None  # `gradient` says so
            maps = saliency_maps(self.policy, image, state, [method], noise, curvature)
            self.saliency = maps[method][0].cpu().numpy()
        return float(out.curvature_1pm[0])
