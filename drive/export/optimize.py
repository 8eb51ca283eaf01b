"""Export-time graph clean-up: what every runtime would otherwise redo (or miss) at each start-up.

The TorchScript exporter leaves work in the graph that depends only on the weights: softplus of the
LTC's positive parameters, wiring masks times weights, and the 'same' padding amounts of the conv
head, built from ConstantOfShape/Concat/Slice chains feeding explicit `Pad` nodes. Two passes:

1. Constant folding and the other hardware-independent rewrites of onnxruntime's *basic* level,
   run once here and saved (onnxruntime documents the basic level as portable across execution
   providers; the extended and layout levels are not, and stay for the runtime to apply). The folded
   values are computed by onnxruntime's own kernels, i.e. exactly what the runtime would compute.
2. Zero `Pad` before a `Conv` folded into the convolution's own (possibly asymmetric) `pads`. An
   explicit Pad costs a copy of the activation, and on x86 onnxruntime also converts the tensor out of
   and back into its blocked NCHWc layout around it, once per convolution.

The result is standard ONNX (default domain only, checked by the caller); parity is measured on it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def optimize(model: onnx.ModelProto) -> onnx.ModelProto:
    """Constant-fold (onnxruntime basic level), fuse Pad into Conv, drop unused opset imports."""
    metadata = list(model.metadata_props)
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        source.write_bytes(model.SerializeToString())
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(target)
        options.log_severity_level = 3  # folding warnings for kernels it skips are expected
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(str(target))
    fuse_pad_into_conv(optimized)
    drop_unused_initializers(optimized)
    used = {node.domain for node in optimized.graph.node}
    keep = [
        entry for entry in optimized.opset_import if entry.domain in used or entry.domain in ("", "ai.onnx")
    ]
    del optimized.opset_import[:]
    optimized.opset_import.extend(keep)
    del optimized.metadata_props[:]
    optimized.metadata_props.extend(metadata)
    return optimized


def _attribute(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    """The value of `node`'s attribute `name` (an int, bytes, list, tensor, ...), or `default`."""
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def fuse_pad_into_conv(model: onnx.ModelProto) -> int:
    """Fold constant zero `Pad` nodes into the `Conv` they feed, in place; returns how many were folded.

    A Pad qualifies when its mode is constant with value 0, its pads are a constant initializer that
    pads only the spatial axes by non-negative amounts, and its only consumer is a Conv without
    auto_pad. ONNX Conv `pads` are [x1_begin, x2_begin, x1_end, x2_end], Pad's [all begins, all ends].
    """
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {out.name for out in graph.output}
    removed = []
    for pad in graph.node:
        if pad.op_type != "Pad" or pad.domain not in ("", "ai.onnx"):
            continue
        users = consumers.get(pad.output[0], [])
        if len(users) != 1 or users[0].op_type != "Conv" or users[0].input[0] != pad.output[0]:
            continue
        if pad.output[0] in outputs or _attribute(pad, "mode", b"constant") not in (b"constant", "constant"):
            continue
        if len(pad.input) < 2 or pad.input[1] not in initializers or (len(pad.input) > 3 and pad.input[3]):
            continue  # pads not constant, or an `axes` input (not produced by our exporter)
        if len(pad.input) > 2 and pad.input[2]:
            value = initializers.get(pad.input[2])
            if value is None or np.any(numpy_helper.to_array(value) != 0):
                continue
        conv = users[0]
        auto_pad = _attribute(conv, "auto_pad", b"NOTSET")
        if auto_pad not in (b"NOTSET", "NOTSET"):
            continue
        pads = numpy_helper.to_array(initializers[pad.input[1]]).astype(np.int64).tolist()
        rank = len(pads) // 2
        begins, ends = pads[:rank], pads[rank:]
        if rank < 3 or any(p != 0 for p in begins[:2] + ends[:2]) or any(p < 0 for p in pads):
            continue
        spatial = rank - 2
        current = list(_attribute(conv, "pads", [0] * (2 * spatial)))
        merged = [a + b for a, b in zip(current, begins[2:] + ends[2:])]
        for attr in list(conv.attribute):
            if attr.name == "pads":
                conv.attribute.remove(attr)
        conv.attribute.append(onnx.helper.make_attribute("pads", merged))
        conv.input[0] = pad.input[0]
        removed.append(pad)
    for pad in removed:
        graph.node.remove(pad)
    return len(removed)


def drop_unused_initializers(model: onnx.ModelProto) -> None:
    """Remove initializers no node (or graph output) reads, in place."""
    graph = model.graph
    used = {name for node in graph.node for name in node.input} | {out.name for out in graph.output}
    keep = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
