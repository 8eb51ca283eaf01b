"""Grad-CAM and integrated gradients from Captum: equal to the textbook definitions on tiny models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from perception.attribution import grad_cam, grad_cam_layer, integrated_gradients, integrated_gradients_raw
from perception.saliency import normalize_01


class _TinyNet(nn.Module):
    """conv(3→4) → ReLU → A (the tapped layer) → conv(4→2) → ReLU → linear → y (B,)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv1 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.tap = nn.Identity()  # A: the post-ReLU feature map Grad-CAM looks at
        self.conv2 = nn.Conv2d(4, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 6 * 10, 1)

    def maps(self, x: torch.Tensor) -> torch.Tensor:
        return self.tap(F.relu(self.conv1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.conv2(self.maps(x))).flatten(1))[:, 0]


def test_library_grad_cam_equals_the_textbook_definition_by_hand():
    net = _TinyNet().eval()
    x = torch.randn(3, 3, 12, 20)
    # By hand: alpha_k = mean over (h, w) of dy/dA^k; cam = ReLU(sum_k alpha_k A^k).
    a = net.maps(x).detach().requires_grad_(True)
    y = net.fc(F.relu(net.conv2(a)).flatten(1))[:, 0]
    (grads,) = torch.autograd.grad(y.sum(), a)
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    by_hand = F.relu((alpha * a.detach()).sum(dim=1))
    assert by_hand.abs().sum() > 0  # the check below compares something

    library = grad_cam_layer(net, net.tap, x)
    torch.testing.assert_close(library, by_hand, rtol=1e-5, atol=1e-7)
    # the full map: upsampled bilinearly to the input size and min-max normalised
    expected = normalize_01(F.interpolate(by_hand[:, None], size=(12, 20), mode="bilinear")[:, 0])
    torch.testing.assert_close(grad_cam(net, net.tap, x, (12, 20)), expected, rtol=1e-5, atol=1e-6)


def test_grad_cam_follows_the_sign_of_the_output():
    # channel 0 sees red, channel 1 blue; y = sum(ch0) - sum(ch1)
    class RedMinusBlue(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3, padding=1, bias=False)
            with torch.no_grad():
                self.conv.weight.zero_()
                self.conv.weight[0, 0] = 1.0 / 9
                self.conv.weight[1, 2] = 1.0 / 9
            self.tap = nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            fmap = self.tap(F.relu(self.conv(x)))
            return fmap[:, 0].sum((1, 2)) - fmap[:, 1].sum((1, 2))

    net = RedMinusBlue()
    x = torch.zeros(1, 3, 40, 60)
    x[0, 0, 5:15, 5:20] = 1.0  # red pushes y up
    x[0, 2, 25:35, 40:55] = 1.0  # blue pushes it down
    up = grad_cam(net, net.tap, x, (40, 60))[0]
    down = grad_cam(lambda t: -net(t), net.tap, x, (40, 60))[0]
    assert up[5:15, 5:20].mean() > 0.5 and up[27:33, 42:53].max() == 0
    assert down[27:33, 42:53].mean() > 0.5 and down[7:13, 7:18].max() == 0


def test_integrated_gradients_is_complete_and_exact_on_a_linear_model():
    weight = torch.randn(1, 3, 8, 10)
    x = torch.randn(2, 3, 8, 10)

    def linear(t: torch.Tensor) -> torch.Tensor:
        return (t * weight).sum(dim=(1, 2, 3))

    # For a linear model IG is exactly (x - baseline) * weight
    attributions = integrated_gradients_raw(linear, x, steps=4)
    torch.testing.assert_close(attributions, x * weight, rtol=1e-5, atol=1e-6)
    # and on a non-linear model it sums to y(x) - y(baseline) (completeness)
    net = _TinyNet().eval()
    x = torch.randn(2, 3, 12, 20)
    total = integrated_gradients_raw(net, x, steps=64).sum(dim=(1, 2, 3))
    with torch.no_grad():
        gap = net(x) - net(torch.zeros_like(x))
    np.testing.assert_allclose(total.numpy(), gap.numpy(), rtol=0.02, atol=1e-3)


def test_integrated_gradients_map_is_in_unit_range_and_marks_the_used_pixels():
    mask = torch.zeros(1, 1, 20, 30)
    mask[..., 4:9, 10:20] = 1.0

    def region_energy(t: torch.Tensor) -> torch.Tensor:
        return (t**2 * mask).sum(dim=(1, 2, 3))

    x = torch.randn(2, 3, 20, 30)
    saliency = integrated_gradients(region_energy, x)
    assert saliency.shape == (2, 20, 30) and saliency.min() >= 0 and saliency.max() <= 1
    assert saliency[:, 4:9, 10:20].mean() > 0.3 and saliency[:, mask[0, 0] == 0].max() == 0


def test_attribution_errors_name_the_problem():
    net = _TinyNet().eval()
    x = torch.randn(1, 3, 12, 20)
    with pytest.raises(ValueError, match=r"one scalar per sample, \(B,\)"):
        grad_cam(lambda t: net(t)[:, None].expand(-1, 2), net.tap, x, (12, 20))
    with pytest.raises(ValueError, match="steps must be ≥ 2"):
        integrated_gradients(net, x, steps=1)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        integrated_gradients(net, x[0])
