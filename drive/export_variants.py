"""Reduced-precision variants of an exported graph: float16 and dynamically quantised int8.

Both keep the graph's interface (uint8 image, float32 state and curvature), so `OnboardPolicy` runs
them unchanged; what they cost in accuracy is measured by the export against PyTorch fp32.

- fp16: every float tensor and weight in float16 (onnxruntime's converter, inputs and outputs kept
  float32). For accelerators with float16 units; on a CPU, onnxruntime computes most float16 ops by
  casting back to float32, so it is rarely faster there.
- int8: onnxruntime's dynamic quantisation of the perception's convolutions and matrix products (int8
  weights, activations quantised per call). The recurrent head stays float32: its few hundred
  parameters cost nothing to run, and quantisation error fed back through the state would accumulate
  from frame to frame.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.float16 import convert_float_to_float16

PERCEPTION_SCOPE = "/perception/"
"""Part of the node names the TorchScript exporter gives the perception's ops (`/policy/perception/...`)."""

INT8_OP_TYPES = ["Conv", "MatMul", "Gemm"]


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float16 copy of `model` with float32 inputs and outputs (metadata kept)."""
    converted = topologically_sorted(convert_float_to_float16(copy_model(model), keep_io_types=True))
    _keep_metadata(model, converted)
    return converted


def to_int8_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` with the perception's Conv/MatMul/Gemm dynamically quantised to 8 bits.

    Weights are quantised to 8-bit unsigned integers (onnxruntime's CPU ConvInteger takes uint8 weights
    only), activations per call. Nodes outside the perception (preprocessing, the recurrent head) stay
    float32.
    """
    excluded = [node.name for node in model.graph.node if PERCEPTION_SCOPE not in node.name]
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(model.SerializeToString())
        # The hint to "pre-process" (shape inference + optimisation) is moot: the graph is already
        # optimised and its shapes are static.
        hint = _DropMessage("pre-processing before quantization")
        logging.getLogger().addFilter(hint)
        try:
            quantize_dynamic(
                source,
                target,
                op_types_to_quantize=INT8_OP_TYPES,
                nodes_to_exclude=excluded,
                weight_type=QuantType.QUInt8,
            )
        finally:
            logging.getLogger().removeFilter(hint)
        converted = onnx.load(str(target))
    _keep_metadata(model, converted)
    return converted


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
