"""The PilotNet-like baseline: the paper's 5,068,900 parameters and how they come about."""

from __future__ import annotations

import pytest
import torch

from perception.pilotnet import PilotNet, valid_conv_size


def _images(b: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 78, 200, 3), generator=g, dtype=torch.uint8)


def test_parameter_count_is_the_papers():
    net = PilotNet()
    count = sum(p.numel() for p in net.parameters())
    conv = sum(p.numel() for p in net.convs.parameters())
    assert count == 5_068_900
    assert conv == 103_700
    assert net.fc1.in_features == 64 * 4 * 19 == 4_864
    assert net.out.bias is None  # with an output bias the count would be 5,068,901


def test_valid_sizes_on_78x200():
    net = PilotNet()
    maps = net.feature_maps(_images(2))
    assert [tuple(m.shape) for m in maps] == [
        (2, 24, 37, 98),
        (2, 36, 17, 47),
        (2, 48, 8, 23),
        (2, 64, 6, 21),
        (2, 64, 4, 19),
    ]
    assert net.map_size == (4, 19)
    assert valid_conv_size(78, 5, 2) == 37 and valid_conv_size(6, 3, 1) == 4


def test_curvature_output_is_per_image_and_consistent():
    net = PilotNet().eval()
    images = _images(3)
    with torch.no_grad():
        out = net(images)
        out_with_maps, maps = net.forward_with_maps(images)
        single = net(images[2:3])
    assert out.shape == (3, 1) and out.dtype == torch.float32
    torch.testing.assert_close(out, out_with_maps)
    torch.testing.assert_close(out[2:3], single, atol=1e-6, rtol=1e-5)
    assert len(maps) == 5 and all((m >= 0).all() for m in maps)
    assert out.std() > 0  # different images, different curvatures


def test_trains_one_step():
    net = PilotNet()
    images, target = _images(4), torch.full((4, 1), 0.02)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3)
    before = torch.nn.functional.mse_loss(net(images), target)
    before.backward()
    assert all(p.grad is not None for p in net.parameters())
    optimizer.step()
    with torch.no_grad():
        assert torch.nn.functional.mse_loss(net(images), target) < before


def test_rejects_channels_first():
    with pytest.raises(ValueError, match=r"PilotNet: expected \(B, 78, 200, 3\) uint8"):
        PilotNet()(torch.zeros(1, 3, 78, 200, dtype=torch.uint8))
