"""ONNX export of a driving policy: one control step as a graph, state in and out, contract in metadata.

    image (1, H, W, 3) uint8 ─┐                      ┌─► curvature (1,) float32, 1/m, left positive
                              ├─ crop/resize ─ CNN ─ head.step ─┤
    state (1, N) float32 ─────┘                      └─► next_state (1, N) float32

The graph is `DrivingPolicy.step` at batch 1 and the camera's own size (the config's camera_height x
camera_width), with one control period of elapsed time per call (20 Hz): preprocessing (crop, cv2
INTER_AREA resize as two constant matrix products, /255, per-image standardisation) is inside it, so
the runtime feeds raw frames. Names and metadata keys are defined by the runtime (`drive.onboard.runtime`).

The stateless CNN's graph carries a 1-wide dummy state that passes through unchanged (`state_size` 1,
`policy_state_size` 0, explained in `state_note`); see `drive.export.graphs`.

Every export is checked before anything is written: `onnx.checker`, then a parity run of PyTorch
against onnxruntime over a frame sequence (`drive.export.parity`); an fp32 graph further than the
tolerance from PyTorch fails the export. `split=True` also writes the vision graph (image -> features)
and the policy graph (features, state -> curvature, next_state); `fp16` / `int8` write reduced-precision
variants of the full graph with their measured accuracy cost (`drive.export.variants`). The graphs are
traced in `drive.export.graphs` and cleaned up in `drive.export.optimize`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from drive import __version__
from drive.export.elapsed import elapsed_metadata, irregular_parity, with_elapsed
from drive.export.graph_edit import stamp_digest
from drive.export.graphs import (
    OPSET,
    STEP_ELAPSED_PERIODS,
    DiagnosticsGraph,
    OneStepGraph,
    PolicyGraph,
    VisionGraph,
    diagnostics_output_names,
    graph_state_size,
    to_onnx,
    with_metadata,
)
from drive.export.parity import (
    ParityResult,
    calibration_frames,
    compare_rollouts,
    full_step,
    onnx_rollout,
    parity_frames,
    split_step,
    torch_rollout,
)

# Re-exported: callers import the tolerance and the result types from the pipeline.
from drive.export.result import PARITY_TOLERANCE_1PM as PARITY_TOLERANCE_1PM
from drive.export.result import ExportError as ExportError
from drive.export.result import ExportResult as ExportResult
from drive.onboard.contract import (
    CURVATURE_OUTPUT,
    CURVATURE_UNITS,
    FEATURES_INPUT,
    FEATURES_OUTPUT,
    IMAGE_INPUT,
    MODEL_FORMAT_VERSION,
    STATE_INPUT,
    STATE_OUTPUT,
    MetaKey,
)
from policies.driving_policy import DrivingPolicy

CONTROL_RATE_HZ = 20.0
"""The control rate the graph steps at (one call per period; the LTC's elapsed time is 1 period)."""


def config_digest(config: dict[str, Any] | None) -> str:
    """sha256[:16] of a config dict's sorted JSON (as `common.strict_config.digest`); "none" for no config."""
    if config is None:
        return "none"
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def policy_metadata(
    policy: DrivingPolicy, train_config: dict[str, Any] | None = None, train_step: int | None = None
) -> dict[str, str]:
    """The contract of `policy`'s full graph as metadata_props (parity keys are added after the check)."""
    config = policy.config
    wiring = policy.wiring
    stateless = policy.state_size == 0
    return {
        MetaKey.FORMAT_VERSION: str(MODEL_FORMAT_VERSION),
        MetaKey.GRAPH: "full",
        MetaKey.POLICY_NAME: config.name,
        MetaKey.INPUT_HEIGHT: str(config.camera_height),
        MetaKey.INPUT_WIDTH: str(config.camera_width),
        MetaKey.INPUT_FORMAT: "(1, H, W, 3) uint8 RGB, channels last, the raw camera frame",
        MetaKey.STATE_SIZE: str(graph_state_size(policy)),
        MetaKey.POLICY_STATE_SIZE: str(policy.state_size),
        MetaKey.STATE_NOTE: (
            "stateless policy: the 1-wide state is a dummy that passes through unchanged"
            if stateless
            else "recurrent state: feed next_state back as state on the next frame; zeros to reset"
        ),
        MetaKey.CONTROL_RATE_HZ: repr(CONTROL_RATE_HZ),
        MetaKey.STEP_ELAPSED_PERIODS: repr(STEP_ELAPSED_PERIODS),
        **elapsed_metadata(policy, CONTROL_RATE_HZ),
        MetaKey.CURVATURE_UNITS: CURVATURE_UNITS,
        MetaKey.WIRING_DIGEST: wiring.digest() if wiring is not None else "none",
        MetaKey.TRAIN_CONFIG_DIGEST: config_digest(train_config),
        MetaKey.TRAIN_STEP: str(train_step) if train_step is not None else "none",
        MetaKey.PREPROCESS_CONTRACT: json.dumps(config.contract.to_dict(), sort_keys=True),
        MetaKey.PREPROCESS_IN_GRAPH: (
            "all: crop, resize (cv2 INTER_AREA weights), scale to [0, 1], per-image standardisation; "
            "the runtime feeds the raw frame"
        ),
        MetaKey.POLICY_CONFIG: json.dumps(config.to_dict(), sort_keys=True),
        MetaKey.TRAIN_CONFIG: json.dumps(train_config, sort_keys=True, default=str),
        MetaKey.PRECISION: "fp32",
        MetaKey.EXPORTER: f"liquid-drive {__version__}, torch {torch.__version__}, opset {OPSET}",
    }


def _atomic_save(model: onnx.ModelProto, path: Path) -> None:
    """Write `model` with the digest of its graph and weights in its metadata (checked on load)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp_digest(model)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(model.SerializeToString())
    os.replace(tmp, path)


def _parity_keys(result: ParityResult, tolerance: float | None) -> dict[str, str]:
    return {
        MetaKey.PARITY_MAX_ABS_DIFF: repr(result.max_abs_diff_1pm),
        MetaKey.PARITY_TOLERANCE: repr(tolerance) if tolerance is not None else "none (reduced precision)",
        MetaKey.PARITY_STEPS: str(result.steps),
        MetaKey.PARITY_SOURCE: result.source,
    }


def _check_parity(result: ParityResult, what: str, tolerance: float) -> None:
    if not result.max_abs_diff_1pm <= tolerance:  # also catches NaN
        raise ExportError(
            f"{what}: parity failed, max |curvature PyTorch - onnxruntime| = "
            f"{result.max_abs_diff_1pm:.3g} 1/m "
            f"over {result.steps} steps ({result.source}) exceeds {tolerance:g} 1/m; nothing was written"
        )


def export_policy(
    policy: DrivingPolicy,
    out: str | Path,
    *,
    train_config: dict[str, Any] | None = None,
    train_step: int | None = None,
    split: bool = False,
    fp16: bool = False,
    int8: bool = False,
    parity_steps: int = 200,
    frames_dir: str | Path | None = None,
    calibration_count: int = 256,
    tolerance_1pm: float = PARITY_TOLERANCE_1PM,
    optimize: bool = True,
    diagnostics: bool = False,
) -> ExportResult:
    """Export `policy` to `out` (and its split / reduced-precision siblings), after the parity check.

    Args:
        policy: the policy to export (copied to CPU in eval mode; the caller's object is not touched).
        out: the full graph's path, e.g. model.onnx. Siblings: model.vision.onnx, model.policy.onnx,
            model.fp16.onnx, model.int8.onnx.
        train_config: the checkpoint's resolved training config (its digest goes into the metadata).
        train_step: the checkpoint's training step.
        split: also write the vision and policy graphs.
        fp16, int8: also write a float16 / statically quantised int8 variant (accuracy cost measured on
            the parity sequence).
        parity_steps: frames in the parity sequence.
        frames_dir: a recording to take the parity frames (its first `parity_steps`) and the int8
            calibration frames (spread over the rest) from; default: synthetic frames.
        calibration_count: frames the int8 variant's activation ranges are calibrated on.
        tolerance_1pm: the fp32 parity bound, 1/m.
        optimize: fold constants and fuse Pads into Convs at export (`drive.export.optimize`).
        diagnostics: the full graph is `graphs.DiagnosticsGraph` (extra outputs for the evaluation's
            onnx engine, named in the metadata's `diagnostic_outputs`); not with `split`.

    Returns:
        The files written, the parity and the variants' accuracy costs.

    Raises:
        ExportError: an fp32 graph misses the parity bound; nothing is written then.
    """
    out = Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"export: the output must be a .onnx file, got {out}")
    module = copy.deepcopy(policy).cpu().eval()
    frames, source = parity_frames(module, parity_steps, frames_dir)
    n = graph_state_size(module)
    image = torch.from_numpy(frames[:1].copy())
    state = torch.zeros(1, n)
    metadata = policy_metadata(module, train_config, train_step)
    full, doc = _full_graph(module, (image, state), metadata, diagnostics, optimize, split)
    full = with_metadata(full, metadata, doc)
    reference = torch_rollout(module, frames)
    parity = compare_rollouts(reference, onnx_rollout(full_step(full), frames, n), source, module.state_size)
    for result in [parity, *irregular_parity(module, full, frames, source)]:  # the 2nd: elapsed input only
        _check_parity(result, f"export of {module.config.name} to {out}", tolerance_1pm)
    metadata.update(_parity_keys(parity, tolerance_1pm))
    to_write = {"full": (out, with_metadata(full, metadata, doc))}

    check = _Check(frames, source, reference, tolerance_1pm)
    split_parity = None
    if split:
        split_parity, halves = _split_graphs(module, (image, state), out, metadata, doc, check, optimize)
        to_write.update(halves)
    calibration = None
    if int8:
        height, width = module.config.camera_height, module.config.camera_width
        calibration = calibration_frames(frames_dir, calibration_count, height, width, parity_steps)
    variants, reduced, label = _precision_variants(module, full, metadata, doc, out, check, fp16, calibration)
    to_write.update(reduced)

    for path, model in to_write.values():
        _atomic_save(model, path)
    metadata = {p.key: p.value for p in to_write["full"][1].metadata_props}  # with its digest
    paths = {role: path for role, (path, _) in to_write.items()}
    return ExportResult(paths, parity, tolerance_1pm, split_parity, variants, metadata, label)


def _full_graph(
    module: DrivingPolicy,
    example: tuple[torch.Tensor, torch.Tensor],
    metadata: dict[str, str],
    diagnostics: bool,
    optimize: bool,
    split: bool = False,
) -> tuple[onnx.ModelProto, str]:
    """The traced full graph (`OneStepGraph`, or `DiagnosticsGraph` whose extra outputs are then named in
    `metadata`) and its doc string."""
    doc = (
        f"liquid-drive {module.config.name}: one control step, image + state -> curvature (1/m) + next_state"
    )
    graph: torch.nn.Module = OneStepGraph(module)
    args, inputs = with_elapsed(module, example, [IMAGE_INPUT, STATE_INPUT])
    extra: list[str] = []
    if diagnostics:
        graph = DiagnosticsGraph(module)
        extra = diagnostics_output_names(graph, args)
        metadata[MetaKey.DIAGNOSTIC_OUTPUTS] = json.dumps(extra)
        doc += "; diagnostics: " + ", ".join(extra)
    return to_onnx(graph, args, inputs, [CURVATURE_OUTPUT, STATE_OUTPUT, *extra], optimize=optimize), doc


def _precision_variants(
    module: DrivingPolicy,
    full: onnx.ModelProto,
    metadata: dict[str, str],
    doc: str,
    out: Path,
    check: _Check,
    fp16: bool,
    calibration: tuple[np.ndarray, str] | None,
) -> tuple[dict[str, ParityResult], dict[str, tuple[Path, onnx.ModelProto]], str]:
    """The float16 and int8 siblings of the full graph, each with its accuracy cost on the parity frames.

    Returns:
        (cost per precision, (path, model) per precision, the int8 calibration label or "").
    """
    from drive.export.variants import to_fp16, to_int8_static

    conversions: dict[str, tuple[Callable[[onnx.ModelProto], onnx.ModelProto], dict[str, Any]]] = {}
    label = ""
    if fp16:
        conversions["fp16"] = (to_fp16, {})
    if calibration is not None:
        frames_u8, label = calibration
        conversions["int8"] = (
            partial(to_int8_static, calibration_frames=frames_u8),
            {MetaKey.INT8_CALIBRATION: label},
        )
    n = graph_state_size(module)
    variants: dict[str, ParityResult] = {}
    written: dict[str, tuple[Path, onnx.ModelProto]] = {}
    for name, (convert, extra) in conversions.items():
        variant = convert(full)
        rollout = onnx_rollout(full_step(variant), check.frames, n)
        cost = compare_rollouts(check.reference, rollout, check.source, module.state_size)
        variants[name] = cost
        meta = {**metadata, **_parity_keys(cost, None), MetaKey.PRECISION: name, **extra}
        written[name] = (out.with_suffix(f".{name}.onnx"), with_metadata(variant, meta, f"{doc} ({name})"))
    return variants, written, label


@dataclass(frozen=True)
class _Check:
    """What a parity check of another graph of the same export needs."""

    frames: np.ndarray
    source: str
    reference: tuple[np.ndarray, np.ndarray]
    tolerance_1pm: float


def _split_graphs(
    module: DrivingPolicy,
    example: tuple[torch.Tensor, torch.Tensor],
    out: Path,
    metadata: dict[str, str],
    doc: str,
    check: _Check,
    optimize: bool,
) -> tuple[ParityResult, dict[str, tuple[Path, onnx.ModelProto]]]:
    """The vision and policy graphs, checked chained together against PyTorch; their files by role."""
    image, state = example
    vision_path, policy_path = out.with_suffix(".vision.onnx"), out.with_suffix(".policy.onnx")
    with torch.no_grad():
        features = module.features(image)
    vision = to_onnx(VisionGraph(module), (image,), [IMAGE_INPUT], [FEATURES_OUTPUT], optimize=optimize)
    args, names = with_elapsed(module, (features, state), [FEATURES_INPUT, STATE_INPUT])
    head = to_onnx(PolicyGraph(module), args, names, [CURVATURE_OUTPUT, STATE_OUTPUT], optimize=optimize)
    chained = onnx_rollout(split_step(vision, head), check.frames, graph_state_size(module))
    parity = compare_rollouts(check.reference, chained, check.source, module.state_size)
    _check_parity(parity, f"split export of {module.config.name} to {vision_path}", check.tolerance_1pm)
    common = {
        **metadata,
        **_parity_keys(parity, check.tolerance_1pm),
        MetaKey.FEATURE_SIZE: str(features.shape[1]),
    }
    vision_meta = {**common, MetaKey.GRAPH: "vision", MetaKey.POLICY_GRAPH_FILE: policy_path.name}
    policy_meta = {**common, MetaKey.GRAPH: "policy", MetaKey.VISION_GRAPH_FILE: vision_path.name}
    return parity, {
        "vision": (vision_path, with_metadata(vision, vision_meta, f"{doc} (vision half)")),
        "policy": (policy_path, with_metadata(head, policy_meta, f"{doc} (policy half)")),
    }


def export_checkpoint(checkpoint: str | Path, out: str | Path, **options: Any) -> ExportResult:
    """Load a checkpoint (`policies.checkpoint.load_policy`) and `export_policy` it with its configs.

    Args:
        checkpoint: a checkpoint file written by training.
        out: the full graph's path.
        **options: `export_policy`'s keyword options (split, fp16, int8, parity_steps, frames_dir, ...).
    """
    from policies.checkpoint import load_policy

    policy, payload = load_policy(checkpoint)
    return export_policy(
        policy, out, train_config=payload.get("train_config"), train_step=payload.get("step"), **options
    )
