"""The NCP conv head: the paper's 79,420 parameters, TF 'same' sizes, per-channel dense, ONNX parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from perception.conv_head import ConvHead, same_padding


def _images(b: int, seed: int = 0, high: int = 256) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, high, (b, 78, 200, 3), generator=g, dtype=torch.uint8)


def test_parameter_count_is_the_papers():
    head = ConvHead()
    total = sum(p.numel() for p in head.parameters())
    conv = sum(p.numel() for p in head.convs.parameters())
    assert (total, conv, total - conv) == (79_420, 71_388, 8_032)
    assert tuple(head.dense_weight.shape) == (8, 250, 4) and tuple(head.dense_bias.shape) == (8, 4)


def test_same_padding_is_tensorflows():
    # TF: total = max((ceil(in/s) - 1) * s + k - in, 0), the odd pixel at the bottom/right.
    assert same_padding(78, 5, 2) == (1, 2)
    assert same_padding(200, 5, 2) == (1, 2)
    assert same_padding(39, 5, 2) == (2, 2)
    assert same_padding(100, 5, 2) == (1, 2)
    assert same_padding(20, 3, 2) == (0, 1)
    assert same_padding(10, 3, 1) == (1, 1)
    assert same_padding(4, 1, 2) == (0, 0)


def test_feature_maps_have_the_papers_sizes():
    head = ConvHead()
    maps = head.feature_maps(_images(2))
    assert [tuple(m.shape) for m in maps] == [
        (2, 24, 39, 100),
        (2, 36, 20, 50),
        (2, 48, 10, 25),
        (2, 64, 10, 25),
        (2, 8, 10, 25),
    ]
    assert all((m >= 0).all() for m in maps)  # post-ReLU
    assert head.map_size == (10, 25)


def test_first_layer_pads_like_tensorflow():
    # A kernel that reads only its top-left tap: output[i, j] = input[2i - 1, 2j - 1] with TF padding
    # (1 before, 2 after), so output[0, 0] sees padding and output[1, 1] sees input[1, 1].
    head = ConvHead()
    with torch.no_grad():
        conv = head.convs[0]
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0
        conv.bias.zero_()
    images = _images(1, seed=3)
    standardized = head.feature_maps(images)[0][0, 0]
    x = images[0, :, :, 0].float() / 255.0
    all_values = images.float() / 255.0
    z = (x - all_values.mean()) / all_values.std(unbiased=False)
    assert standardized[0, 0] == 0.0
    torch.testing.assert_close(standardized[1:, 1:], F.relu(z[1:-1:2, 1:-1:2]), atol=1e-5, rtol=1e-5)


def test_features_are_32_relu_and_per_image():
    head = ConvHead()
    images = _images(3)
    with torch.no_grad():
        features = head(images)
        single = head(images[1:2])
    assert head.out_features == 32 and features.shape == (3, 32) and features.dtype == torch.float32
    assert (features >= 0).all()
    torch.testing.assert_close(features[1:2], single, atol=1e-5, rtol=1e-5)


def test_per_channel_dense_is_eight_separate_layers():
    head = ConvHead()
    with torch.no_grad():
        features, maps = head.forward_with_maps(_images(2))
        deepest = maps[-1]
        expected = torch.cat(
            [F.relu(deepest[:, c].flatten(1) @ head.dense_weight[c] + head.dense_bias[c]) for c in range(8)],
            dim=1,
        )
    torch.testing.assert_close(features, expected, atol=1e-5, rtol=1e-5)
    # channel k feeds features 4k..4k+3 only
    with torch.no_grad():
        bumped = deepest.clone()
        bumped[:, 5] += 1.0
        changed = (head.features_from_map(bumped) != features).any(0).nonzero().flatten().tolist()
    assert set(changed) <= {20, 21, 22, 23} and changed


def test_brightness_shift_does_not_change_features():
    # Per-image standardisation inside the head: adding a constant to every pixel changes nothing.
    head = ConvHead()
    images = _images(2, high=150)
    with torch.no_grad():
        torch.testing.assert_close(head(images + 60), head(images), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "bad, what",
    [
        (torch.rand(2, 78, 200, 3), "float32"),
        (torch.zeros(2, 3, 78, 200, dtype=torch.uint8), "channels first"),
        (torch.zeros(2, 80, 200, 3, dtype=torch.uint8), "80, 200, 3"),
        (torch.zeros(78, 200, 3, dtype=torch.uint8), "78, 200, 3"),
    ],
)
def test_rejects_wrong_images(bad, what):
    with pytest.raises(ValueError, match=r"expected \(B, 78, 200, 3\) uint8") as err:
        ConvHead()(bad)
    assert what in str(err.value)


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
def test_onnx_export_matches_torch(tmp_path):
    import onnxruntime as ort

    head = ConvHead().eval()
    path = tmp_path / "conv_head.onnx"
    torch.onnx.export(
        head,
        (_images(2),),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["image"],
        output_names=["features"],
        dynamic_axes={"image": {0: "batch"}, "features": {0: "batch"}},
    )
    images = _images(3, seed=7)
    (onnx_features,) = ort.InferenceSession(str(path)).run(None, {"image": images.numpy()})
    with torch.no_grad():
        expected = head(images).numpy()
    assert onnx_features.shape == (3, 32)
    np.testing.assert_allclose(onnx_features, expected, atol=1e-4, rtol=0)
