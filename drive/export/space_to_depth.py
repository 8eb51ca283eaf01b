"""A stride-2 convolution rewritten as SpaceToDepth + a stride-1 convolution: the same numbers, a better
shape for integer kernels.

The first convolution of the perception sees 3 channels; onnxruntime's int8 kernels gain nothing on so few
(quantised as it is, it ran slower than in float). Folding each 2x2 block of pixels into channels gives
12 channels at half the resolution, and a k x k stride-2 kernel becomes a ceil((k + s)/2)-square stride-1
kernel over the blocks (s: the kernel's offset within a block, from the padding): weights that fall
outside the original kernel are zeros, so the result is the original convolution's, term for term.

Per axis, output o reads input rows 2o - p + i (i < k, p the padding before). With q = ceil(p / 2) and
s = 2q - p, tap i falls in block o - q + (i + s) // 2 at offset (i + s) % 2; the block kernel has
K = ceil((k + s) / 2) taps, and the block convolution is padded q blocks before and as needed after.
ONNX SpaceToDepth puts pixel (a, b) of a block, channel c, at channel (a·2 + b)·C + c.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _axis_plan(size: int, kernel: int, pad_before: int, pad_after: int) -> tuple[int, int, int, int]:
    """(offset s, block kernel K, block pads before, after) of one axis of a stride-2 convolution."""
    out = (size + pad_before + pad_after - kernel) // 2 + 1
    before = math.ceil(pad_before / 2)
    offset = 2 * before - pad_before
    taps = math.ceil((kernel + offset) / 2)
    after = max(0, out - before + taps - 1 - size // 2)
    return offset, taps, before, after


def space_to_depth_weights(
    weight: np.ndarray, offset_hw: tuple[int, int], taps_hw: tuple[int, int]
) -> np.ndarray:
    """(F, C, kh, kw) stride-2 kernel -> (F, 4C, Kh, Kw) stride-1 kernel over 2x2 blocks (see module)."""
    filters, channels, kh, kw = weight.shape
    (sh, sw), (th, tw) = offset_hw, taps_hw
    embedded = np.zeros((filters, channels, 2 * th, 2 * tw), weight.dtype)
    embedded[:, :, sh : sh + kh, sw : sw + kw] = weight
    blocks = embedded.reshape(filters, channels, th, 2, tw, 2)  # (F, C, K_h, a, K_w, b)
    rearranged: np.ndarray = blocks.transpose(0, 3, 5, 1, 2, 4).reshape(filters, 4 * channels, th, tw)
    return rearranged


def first_conv_to_space_to_depth(model: onnx.ModelProto, conv_name: str) -> onnx.ModelProto:
    """A copy of `model` whose Conv `conv_name` (stride 2, group 1, no dilation, even input size, static
    weights) reads a SpaceToDepth of its input with the rearranged kernel; everything else unchanged.

    Raises:
        ValueError: no such Conv, or one this rewrite does not cover (the message says which property).
    """
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    graph = edited.graph
    index = next((i for i, n in enumerate(graph.node) if n.name == conv_name and n.op_type == "Conv"), None)
    if index is None:
        raise ValueError(f"space_to_depth: no Conv named {conv_name!r}")
    node = graph.node[index]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    inits = {t.name: t for t in graph.initializer}
    shapes = {v.name: v for v in [*graph.input, *graph.value_info]}
    if list(attrs.get("strides", [1, 1])) != [2, 2] or attrs.get("group", 1) != 1:
        raise ValueError(f"space_to_depth: {conv_name} is not a stride-2, group-1 convolution")
    if any(d != 1 for d in attrs.get("dilations", [1, 1])) or node.input[1] not in inits:
        raise ValueError(f"space_to_depth: {conv_name} is dilated or its weights are not constant")
    weight = numpy_helper.to_array(inits[node.input[1]])
    height, width = _static_hw(node.input[0], shapes, edited)
    if height % 2 or width % 2:
        raise ValueError(f"space_to_depth: {conv_name}'s input is {height}x{width}, not even")
    pt, pl, pb, pr = attrs.get("pads", [0, 0, 0, 0])
    sh, th, bt, bb = _axis_plan(height, weight.shape[2], pt, pb)
    sw, tw, bl, br = _axis_plan(width, weight.shape[3], pl, pr)
    kernel = numpy_helper.from_array(
        space_to_depth_weights(weight, (sh, sw), (th, tw)), f"{conv_name}/s2d_weight"
    )
    blocks = f"{conv_name}/s2d_input"
    new_nodes = [
        helper.make_node("SpaceToDepth", [node.input[0]], [blocks], name=f"{conv_name}/s2d", blocksize=2),
        helper.make_node(
            "Conv",
            [blocks, kernel.name, *node.input[2:]],
            list(node.output),
            name=node.name,
            kernel_shape=[th, tw],
            strides=[1, 1],
            pads=[bt, bl, bb, br],
        ),
    ]
    del graph.node[index]
    for offset, new in enumerate(new_nodes):
        graph.node.insert(index + offset, new)
    graph.initializer.append(kernel)
    if not any(
        n.input[1] == node.input[1] for n in graph.node if n.op_type == "Conv" and n.name != conv_name
    ):
        graph.initializer.remove(inits[node.input[1]])
    return edited


def _static_hw(name: str, shapes: dict[str, onnx.ValueInfoProto], model: onnx.ModelProto) -> tuple[int, int]:
    """(H, W) of a 4-D tensor, from the graph's shapes or by shape inference."""
    if name not in shapes:
        inferred = onnx.shape_inference.infer_shapes(model)
        shapes = {v.name: v for v in [*inferred.graph.input, *inferred.graph.value_info]}
    dims = shapes[name].type.tensor_type.shape.dim if name in shapes else []
    if len(dims) != 4 or not all(d.HasField("dim_value") for d in dims[2:]):
        raise ValueError(f"space_to_depth: the size of {name!r} is not static")
    return dims[2].dim_value, dims[3].dim_value
