"""The stride-2 convolution rewritten as SpaceToDepth + stride-1 convolution gives the same numbers."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from drive.export.space_to_depth import first_conv_to_space_to_depth, space_to_depth_weights


def _conv_model(height: int, width: int, kernel: int, pads: list[int], stride: int = 2) -> onnx.ModelProto:
    rng = np.random.default_rng(kernel * 31 + sum(pads))
    weight = rng.normal(0, 0.2, (6, 3, kernel, kernel)).astype(np.float32)
    bias = rng.normal(0, 0.2, 6).astype(np.float32)
    conv = helper.make_node(
        "Conv",
        ["x", "w", "b"],
        ["y"],
        name="conv0",
        kernel_shape=[kernel, kernel],
        strides=[stride] * 2,
        pads=pads,
    )
    graph = helper.make_graph(
        [conv],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out: np.ndarray = session.run(None, {"x": x})[0]
    return out


@pytest.mark.parametrize(
    ("height", "width", "kernel", "pads"),
    [
        (78, 200, 5, [1, 1, 2, 2]),  # the perception's first convolution (TensorFlow 'same')
        (10, 12, 5, [2, 2, 2, 2]),
        (8, 8, 3, [0, 1, 1, 0]),
        (6, 10, 4, [0, 0, 0, 0]),
        (12, 6, 3, [1, 1, 1, 1]),
    ],
)
def test_the_rewrite_computes_the_same_convolution(height, width, kernel, pads):
    model = _conv_model(height, width, kernel, pads)
    rewritten = first_conv_to_space_to_depth(model, "conv0")
    ops = [n.op_type for n in rewritten.graph.node]
    assert ops == ["SpaceToDepth", "Conv"] and [i.name for i in rewritten.graph.initializer] == [
        "b",
        "conv0/s2d_weight",
    ]
    x = np.random.default_rng(0).normal(size=(1, 3, height, width)).astype(np.float32)
    expected, got = _run(model, x), _run(rewritten, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_the_weights_put_each_tap_at_its_block_offset():
    weight = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3) + 1
    blocks = space_to_depth_weights(weight, (1, 0), (2, 2))  # taps shifted one row down in the block grid
    assert blocks.shape == (2, 4, 2, 2)
    # Channel (a·2 + b)·C + c holds pixel (a, b) of each block: tap (i, j) -> block (i+1)//2, offset (i+1)%2.
    for i in range(3):
        for j in range(3):
            a, r = (i + 1) % 2, (i + 1) // 2
            b, s = j % 2, j // 2
            assert blocks[0, a * 2 + b, r, s] == weight[0, 0, i, j]
    assert np.count_nonzero(blocks[0]) == 9  # the rest are zeros


def test_what_the_rewrite_does_not_cover_is_refused():
    with pytest.raises(ValueError, match="no Conv named"):
        first_conv_to_space_to_depth(_conv_model(8, 8, 3, [1, 1, 1, 1]), "conv9")
    with pytest.raises(ValueError, match="not a stride-2"):
        first_conv_to_space_to_depth(_conv_model(8, 8, 3, [1, 1, 1, 1], stride=1), "conv0")
    with pytest.raises(ValueError, match="not even"):
        first_conv_to_space_to_depth(_conv_model(9, 8, 3, [1, 1, 1, 1]), "conv0")
