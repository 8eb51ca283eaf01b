"""The graphs an export traces: full step, and the vision / policy halves of a split export.

Each is a thin `nn.Module` around the `DrivingPolicy`, so the traced graph is the policy's own `step`
(batch 1). A continuous-time head (LTC, CfC: `head.continuous_time`) gets a third input, `elapsed_s`
(1, 1) float32, the seconds since the previous frame, which the graph turns into control periods
(elapsed_s / period_s: exactly 1.0 when it is one period, so that call equals the fixed-step graph bit
for bit); a discrete-time head's graph keeps two inputs and steps one period per call. `to_onnx` traces
one with the TorchScript exporter (opset 17, static shapes) and cleans the result up
(`drive.export.optimize`).

The stateless CNN has no state, but a zero-width ONNX tensor is awkward for runtimes (and some reject
it), so its graphs carry a 1-wide dummy state that passes through unchanged.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import onnx
import torch
from torch import nn

from drive import __version__
from drive.export import optimize as graph_optimize
from policies.driving_policy import DrivingPolicy

OPSET = 17
CONTROL_PERIOD_S = 0.05
"""The exported graphs' control period, s (20 Hz): `elapsed_s` is divided by it."""
STEP_ELAPSED_PERIODS = 1.0
"""Elapsed time per graph call, in control periods (the LTC's Δt; 1 = one 20 Hz step)."""


def takes_elapsed(policy: DrivingPolicy) -> bool:
    """Whether `policy`'s graphs take the `elapsed_s` input: its head integrates over time."""
    return bool(getattr(policy.head, "continuous_time", False))


def _periods(elapsed_s: torch.Tensor | None, period_s: float) -> float | torch.Tensor:
    """(1, 1) seconds -> (1,) control periods; one period when the graph has no elapsed input."""
    if elapsed_s is None:
        return STEP_ELAPSED_PERIODS
    # A division (not a multiplication by the rate): float32(period) / float32(period) is exactly 1.
    return elapsed_s[:, 0] / torch.tensor(period_s, dtype=torch.float32)


class OneStepGraph(nn.Module):
    """The full graph: (image (1, H, W, 3) uint8, state (1, N)[, elapsed_s (1, 1) float32 s]) ->
    (curvature (1,), next_state (1, N)).

    Args:
        policy: the policy.
        period_s: the control period, s; the graph's elapsed input is divided by it.
    """

    def __init__(self, policy: DrivingPolicy, period_s: float = CONTROL_PERIOD_S) -> None:
        super().__init__()
        self.policy = policy
        self.stateless = policy.state_size == 0
        self.period_s = float(period_s)

    def forward(
        self, image: torch.Tensor, state: torch.Tensor, elapsed_s: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        periods = _periods(elapsed_s, self.period_s)
        if self.stateless:  # the 1-wide dummy state passes through (module docstring)
            curvature, _ = self.policy.step(image, state[:, :0], periods)
            return curvature, state
        return self.policy.step(image, state, periods)


class VisionGraph(nn.Module):
    """Split export, first half: image (1, H, W, 3) uint8 -> features (1, F) float32."""

    def __init__(self, policy: DrivingPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.policy.features(image)


class PolicyGraph(nn.Module):
    """Split export, second half: (features (1, F), state (1, N)[, elapsed_s (1, 1)]) -> (curvature (1,),
    next_state); `elapsed_s` as in `OneStepGraph`."""

    def __init__(self, policy: DrivingPolicy, period_s: float = CONTROL_PERIOD_S) -> None:
        super().__init__()
        self.policy = policy
        self.stateless = policy.state_size == 0
        self.period_s = float(period_s)

    def forward(
        self, features: torch.Tensor, state: torch.Tensor, elapsed_s: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        head_state = state[:, :0] if self.stateless else state
        y, next_state = self.policy.head.step(features, head_state, _periods(elapsed_s, self.period_s))
        curvature = y[:, 0] * self.policy.curvature_scale_1pm
        return curvature, (state if self.stateless else next_state)


def graph_state_size(policy: DrivingPolicy) -> int:
    """Width of the graph's state: the policy's, or 1 (a dummy) for a stateless policy."""
    return max(policy.state_size, 1)


def _drop_non_tensor_entries(
    module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: dict[str, Any]
) -> None:
    for key in [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]:
        del state_dict[key]


def to_onnx(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    input_names: list[str],
    output_names: list[str],
    optimize: bool = True,
) -> onnx.ModelProto:
    """Trace `module` at the example `args` (static shapes) into an ONNX model (opset 17).

    With `optimize`, the graph is constant-folded and its Pads fused into the Convs at export time
    (`drive.export.optimize`), instead of by every runtime at every start-up.
    """
    buffer = io.BytesIO()
    # An inference graph: eval mode (the sensory feature norm's running moments, not batch statistics).
    # Set here because the exporter restores the wrapper's mode afterwards, recursively, which would
    # leave a fresh (training-mode) wrapper's policy in training mode for the parity rollout.
    module.eval()
    # The tracer detaches every state_dict value; a module's non-tensor extra state (the LTC cell keeps
    # its wiring digest there) would break it, and it holds nothing the graph computes with.
    hook = module.register_state_dict_post_hook(_drop_non_tensor_entries)
    try:
        _export(module, args, buffer, input_names, output_names)
    finally:
        hook.remove()
    model = onnx.load_from_string(buffer.getvalue())
    return graph_optimize.optimize(model) if optimize else model


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    buffer: io.BytesIO,
    input_names: list[str],
    output_names: list[str],
) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of dynamo, which the heads do not promise.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # type: ignore[attr-defined]  # no __all__
        # F.pad's reversed Slice is left unfolded by torch; `drive.export.optimize` folds it.
        warnings.filterwarnings("ignore", "Constant folding - Only steps=1", UserWarning)
        torch.onnx.export(
            module,
            args,
            buffer,  # type: ignore[arg-type]  # the TorchScript exporter (dynamo=False) writes to a buffer
            dynamo=False,
            opset_version=OPSET,
            input_names=input_names,
            output_names=output_names,
            do_constant_folding=True,
            training=torch.onnx.TrainingMode.EVAL,
        )


def with_metadata(model: onnx.ModelProto, metadata: dict[str, str], doc: str) -> onnx.ModelProto:
    """`model` with `metadata` as its metadata_props (replacing any), a doc string, checked."""
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    model.doc_string = doc
    model.producer_name = "liquid-drive"
    model.producer_version = __version__
    onnx.checker.check_model(model, full_check=True)
    return model
