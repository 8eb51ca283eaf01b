"""Reduced-precision variants of an exported graph: float16 and statically quantised int8.

Both keep the graph's interface (uint8 image, float32 state and curvature), so `OnboardPolicy` runs
them unchanged; what they cost in accuracy is measured by the export against PyTorch fp32.

- fp16: every float tensor and weight in float16 (onnxruntime's converter, inputs and outputs kept
  float32). For accelerators with float16 units; on a CPU, onnxruntime computes most float16 ops by
  casting back to float32, so it is rarely faster there.
- int8: the perception's convolutions statically quantised to 8 bits (QDQ: int8 weights per output
  channel, uint8 activations with ranges calibrated once on recorded frames), which onnxruntime fuses
  into integer convolutions (VNNI on x86, dot-product instructions on ARM), each convolution's ReLU
  folded into it. Dynamic quantisation (activation ranges found per call) was slower (0.94 ms vs 0.55).
  The first convolution sees 3 channels, on which the integer kernel gained nothing (measured: p50
  -0.004 / +0.006 / -0.023 / -0.15 ms for ncp-ltc / ncp-cfc / lstm / cnn), so it is first rewritten
  exactly as SpaceToDepth + a stride-1 convolution over 12 channels (`drive.export.space_to_depth`)
  and quantised in that form. Measured (issue 19, `bench/onboard.py --int8-float-first-conv`, the
  demo's trained checkpoints, 200 recorded frames, 1 thread, quiet 2-core machine), against int8 with
  the first convolution float: p50 0.384 / 0.378 / 0.364 / 1.092 ms vs 0.457 / 0.447 / 0.432 / 1.136
  (-16 / -15 / -16 / -4 %), accuracy cost 0.34 / 0.49 / 0.48 / 0.34 % of the curvature rms vs
  0.20 / 0.41 / 0.43 / 0.18 % (max |Δcurvature| ≤ 6.5e-4 1/m). `first_conv=False` keeps it float.
  Kept float32, each for a measured reason:
  - the per-channel dense layers (the 32 features): quantised they doubled the cost (6 %);
  - preprocessing and the recurrent head: a few hundred parameters that cost nothing to run, and an
    error fed back through the state would accumulate from frame to frame.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.transformers.float16 import convert_float_to_float16

from drive.export.space_to_depth import first_conv_to_space_to_depth
from drive.onboard.contract import ELAPSED_INPUT, IMAGE_INPUT, STATE_INPUT

PERCEPTION_SCOPE = "/perception/"
"""Part of the node names the TorchScript exporter gives the perception's ops (`/policy/perception/...`)."""


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float16 copy of `model` with float32 inputs and outputs (metadata kept)."""
    converted = topologically_sorted(convert_float_to_float16(copy_model(model), keep_io_types=True))
    _keep_metadata(model, converted)
    return converted


def to_int8_static(
    model: onnx.ModelProto, calibration_frames: np.ndarray, first_conv: bool = True
) -> onnx.ModelProto:
    """A copy of `model` with the perception's convolutions quantised to 8 bits.

    Args:
        model: an fp32 one-step graph (inputs image and state).
        calibration_frames: (n, H, W, 3) uint8 camera frames the activation ranges are taken from
            (min/max over the frames; see `drive.export.parity.calibration_frames`).
        first_conv: quantise the first convolution too, in its SpaceToDepth form (False: keep it
            float; see the module docstring and `bench/onboard.py --int8-float-first-conv`).

    Returns:
        The QDQ graph (QuantizeLinear/DequantizeLinear around each quantised Conv; standard ONNX that
        any runtime can run, fused into integer kernels by onnxruntime), metadata kept.
    """
    convs = [
        node.name for node in model.graph.node if node.op_type == "Conv" and PERCEPTION_SCOPE in node.name
    ]
    if first_conv:  # over 2x2 blocks (12 channels) the integer kernel pays; over 3 channels it did not
        try:
            model = first_conv_to_space_to_depth(model, convs[0])
        except ValueError:
            pass  # not a stride-2 convolution of an even-sized image: quantised as it is
    quantised = set(convs if first_conv else convs[1:])
    # The ReLU after each quantised convolution is folded into it (its range becomes the convolution's
    # output range), so onnxruntime chains the integer convolutions with no float ReLU in between.
    conv_outputs = {out for node in model.graph.node if node.name in quantised for out in node.output}
    quantised |= {n.name for n in model.graph.node if n.op_type == "Relu" and n.input[0] in conv_outputs}
    excluded = [node.name for node in model.graph.node if node.name not in quantised]
    # Zero state: the recurrent head is not quantised, so the state only has to be a valid input.
    state_input = next(i for i in model.graph.input if i.name == STATE_INPUT)
    zero_state = np.zeros((1, state_input.type.tensor_type.shape.dim[1].dim_value), np.float32)
    timed = (
        {ELAPSED_INPUT: np.full((1, 1), 0.05, np.float32)}
        if ELAPSED_INPUT in {i.name for i in model.graph.input}
        else {}
    )  # one period: the recurrent head is not quantised, any valid value does
    feeds = [{IMAGE_INPUT: frame[None], STATE_INPUT: zero_state, **timed} for frame in calibration_frames]
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(model.SerializeToString())
        # The hint to "pre-process" (shape inference + optimisation) is moot: the graph is already
        # optimised and its shapes are static.
        hint = _DropMessage("pre-process")
        logging.getLogger().addFilter(hint)
        try:
            quantize_static(
                source,
                target,
                _Feeds(feeds),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=["Conv", "Relu"],
                nodes_to_exclude=excluded,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
        finally:
            logging.getLogger().removeFilter(hint)
        converted = onnx.load(str(target))
    _keep_metadata(model, converted)
    return converted


class _Feeds(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime is untyped (Any)
    """The calibration inputs, one graph call each."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


class _DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def copy_model(model: onnx.ModelProto) -> onnx.ModelProto:
    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    return copied


def _keep_metadata(source: onnx.ModelProto, target: onnx.ModelProto) -> None:
    if {p.key for p in target.metadata_props} != {p.key for p in source.metadata_props}:
        del target.metadata_props[:]
        target.metadata_props.extend(source.metadata_props)


def topologically_sorted(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with its nodes reordered so every node follows its inputs' producers (the fp16
    converter appends the casts it inserts for kept float32 inputs at the end of the node list)."""
    graph = model.graph
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [node for node in pending if all(name in available for name in node.input)]
        if not ready:
            missing = sorted({n for node in pending for n in node.input} - available)
            raise ValueError(f"graph has a cycle or undefined inputs: {missing[:5]}")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [node for node in pending if node not in ready]
    del graph.node[:]
    graph.node.extend(ordered)
    return model
