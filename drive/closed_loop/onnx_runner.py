"""`OnnxRunner`: the closed-loop driver of an exported graph, through the onboard runtime itself.

    obs.image (H, W, 3) uint8 ─► OnboardPolicy.act ─► curvature 1/m
                                    └─ diagnostics: activity (1, U), feature_map_k (1, h, w)
                                         ─► hidden_state (U,), saliency (78, 200) VisualBackProp

The recurrent state lives in the `OnboardPolicy` this runner owns (the one object that holds it, as
`PolicyRunner` holds the torch policy's); `reset()` zeroes it. The graph is a diagnostics export
(`drive export` with `diagnostics=True`, see `drive.eval.engine`), so neuron traces and saliency come from
the graph that drove. Nothing here runs PyTorch: the runtime, numpy and cv2 (VisualBackProp's numpy
form, `perception.saliency_numpy`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from drive.onboard.runtime import OnboardPolicy
from sim.types import Observation

SALIENCY_METHODS = ("visual_backprop",)
"""Saliency an exported graph can give (from its feature maps); Grad-CAM needs PyTorch's gradients."""


class OnnxRunner:
    """Drives an exported diagnostics graph frame by frame (the `Driver` protocol).

    Args:
        model_path: a graph exported with `diagnostics=True` (plain exports drive too, without neuron
            traces beyond the state and without saliency).
        saliency: None or "visual_backprop".
        name: label for reports (default: the graph's policy name).
        threads: onnxruntime intra-op threads (1: as each evaluation worker runs).

    Raises:
        ValueError: a saliency method the graph cannot give (Grad-CAM: use the torch engine), or
            VisualBackProp asked of a graph without feature-map outputs.
    """

    def __init__(
        self,
        model_path: str | Path,
        saliency: str | None = None,
        name: str | None = None,
        threads: int = 1,
    ) -> None:
        self.policy = OnboardPolicy(model_path, intra_op_num_threads=threads)
        contract = self.policy.contract
        self.name = name or contract.policy_name
        self._maps = sorted(
            (n for n in self.policy.diagnostic_outputs if n.startswith("feature_map_")),
            key=lambda n: int(n.rsplit("_", 1)[1]),
        )
        self._activity = "activity" in self.policy.diagnostic_outputs
        self._stateless = int(contract.metadata.get("policy_state_size", contract.state_size)) == 0
        preprocess: dict[str, Any] = contract.preprocess_contract
        self.input_size = (int(preprocess.get("out_height", 78)), int(preprocess.get("out_width", 200)))
        self._saliency_method: str | None = None
        self.saliency_method = saliency
        self.hidden_state: np.ndarray | None = None
        self.saliency: np.ndarray | None = None

    @property
    def has_feature_maps(self) -> bool:
        """Whether the graph gives the feature maps VisualBackProp needs."""
        return bool(self._maps)

    @property
    def saliency_method(self) -> str | None:
        return self._saliency_method

    @saliency_method.setter
    def saliency_method(self, method: str | None) -> None:
        if method is not None and method not in SALIENCY_METHODS:
            raise ValueError(
                f"saliency {method!r} needs gradients, which an exported graph does not have: it is a "
                f"torch-engine feature (--engine torch); the onnx engine gives {', '.join(SALIENCY_METHODS)}"
            )
        if method is not None and not self._maps:
            raise ValueError(
                f"model {self.policy.contract.path} has no feature-map outputs for saliency (export it "
                "with diagnostics, or its perception has no feature maps)"
            )
        self._saliency_method = method

    def reset(self, seed: int = 0) -> None:
        """Zero the recurrent state (a new episode)."""
        self.policy.reset()
        self.hidden_state = None
        self.saliency = None

    def act(self, obs: Observation, info: dict[str, Any] | None = None) -> float:
        """Curvature (1/m) for `obs.image`; also sets `hidden_state` and, with saliency on, `saliency`
        ((78, 200) float32 in [0, 1]).

        Raises:
            ValueError: the observation carries standardised-space input noise, which the graph (it
                takes raw frames) cannot add: that noise needs the torch engine.
        """
        if getattr(obs, "input_noise", None) is not None:
            raise ValueError(
                "noise_space 'standardized' adds noise inside the network input, which an exported graph "
                "(raw frames in) cannot take: use the torch engine or pixel-space noise"
            )
        # Simulated time, never the wall clock: the frame's elapsed periods as the deployment faults tell it
        # (`policy_elapsed_periods`), else one period, exactly what the torch engine integrates over.
        periods = float((info or {}).get("policy_elapsed_periods", 1.0))
        curvature = self.policy.act(obs.image, periods * self.policy.contract.control_period_s)
        outputs = self.policy.diagnostics
        if self._activity:
            self.hidden_state = np.asarray(outputs["activity"][0], np.float32)
        elif not self._stateless:
            self.hidden_state = self.policy.state[0]
        if self._saliency_method is not None:
            from perception.saliency_numpy import visual_backprop_from_means

            self.saliency = visual_backprop_from_means([outputs[n] for n in self._maps], self.input_size)
        else:
            self.saliency = None
        return curvature
