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
from perception.feature_net import FeatureMapNet
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


ACTIVITY_OUTPUT = "activity"
"""Diagnostics graph output: (1, U) float32 neuron activity (`DrivingPolicy.inspect_step`'s `activity`)."""
FEATURE_MAP_OUTPUT = "feature_map_{}"
"""Diagnostics graph outputs, shallow to deep: (1, h, w) float32 channel means of each convolution's post-ReLU
map, what VisualBackProp needs (`perception.saliency_numpy`)."""


class DiagnosticsGraph(nn.Module):
    """The full graph plus what the closed loop shows: (image, state) -> (curvature, next_state, activity,
    feature_map_0 .. feature_map_{K-1}).

    The curvature and state are computed by the same operations as `OneStepGraph` (`inspect_step`'s
    path: standardised input -> convolutions -> the layers after them -> head step); the extra outputs
    only read tensors along that path, so a runtime computes the same command with or without them.
    The wrappers below keep the exported node names under `/policy/perception/`, as in the plain graph
    (the int8 variant picks the perception's convolutions by that scope). A policy without feature maps
    has no `feature_map_*` outputs.
    """

    def __init__(self, policy: DrivingPolicy, period_s: float = CONTROL_PERIOD_S) -> None:
        super().__init__()
        self.policy = _DiagnosticStep(policy)
        self.period_s = float(period_s)

    def forward(
        self, image: torch.Tensor, state: torch.Tensor, elapsed_s: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        outputs: tuple[torch.Tensor, ...] = self.policy(image, state, _periods(elapsed_s, self.period_s))
        return outputs


class _PerceptionWithMaps(nn.Module):
    """standardised input (1, 3, 78, 200) -> (features, last hidden layer, *post-ReLU maps)."""

    def __init__(self, perception: FeatureMapNet) -> None:
        super().__init__()
        self.net = perception

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        maps = self.net.maps_from_standardized(x)
        features, last_hidden = self.net.features_and_hidden_from_map(maps[-1])
        return (features, last_hidden, *maps)


class _DiagnosticStep(nn.Module):
    def __init__(self, policy: DrivingPolicy) -> None:
        super().__init__()
        self.driving = policy
        self.stateless = policy.state_size == 0
        self.perception = _PerceptionWithMaps(policy.perception) if policy.has_feature_maps else None

    def forward(
        self, image: torch.Tensor, state: torch.Tensor, periods: float | torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        policy = self.driving
        head_state = state[:, :0] if self.stateless else state
        maps: list[torch.Tensor] = []
        if self.perception is not None:
            features, last_hidden, *maps = self.perception(policy.network_input(image))
        else:
            features = last_hidden = policy.features(image)
        y, next_state = policy.head.step(features, head_state, periods)
        activity = policy.head.hidden_activity(next_state) if not self.stateless else last_hidden
        curvature = y[:, 0] * policy.curvature_scale_1pm
        means = tuple(fmap.mean(dim=1) for fmap in maps)
        return (curvature, state if self.stateless else next_state, activity, *means)


def diagnostics_output_names(graph: DiagnosticsGraph, example: tuple[torch.Tensor, ...]) -> list[str]:
    """The extra outputs of `graph` (after curvature and next_state), in order, found by one call."""
    with torch.no_grad():
        count = len(graph(*example)) - 3
    return [ACTIVITY_OUTPUT, *(FEATURE_MAP_OUTPUT.format(k) for k in range(count))]


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
