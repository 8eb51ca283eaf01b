"""The NCP paper's feed-forward baseline: a PilotNet-like CNN from image straight to curvature.

Lechner, Hasani et al. 2020 (docs/conventions.md): conv 24/36/48/64/64, kernels 5,5,3,3,3, strides 2,2,2,1,1,
'valid' padding, ReLU, then fully connected 1000-100-1; 5,068,900 parameters.

How that count comes out: on the 78x200 input the valid convolutions give 37x98 -> 17x47 -> 8x23 ->
6x21 -> 4x19, so the flattened map has 64 * 4 * 19 = 4,864 values. Convolutions: 103,700 parameters;
FC 4864->1000: 4,865,000; 1000->100: 100,100; 100->1: 100 *without* a bias (with one the total would
be 5,068,901). So the paper's count fixes the input at 78x200 and a bias-free output layer; we follow
it. (Bias-free also suits a signed target whose mean is ~0.) ReLU follows every conv and the two
hidden FC layers, not the output; dropout, if the paper used any, adds no parameters and is left out.
The flatten order is PyTorch's (C, H, W) rather than TensorFlow's (H, W, C); it changes no count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from perception.feature_net import FeatureMapNet

PILOTNET_CONV_LAYERS = ((24, 5, 2), (36, 5, 2), (48, 3, 2), (64, 3, 1), (64, 3, 1))
"""(filters, kernel, stride) of each valid convolution, shallow to deep."""

PILOTNET_HIDDEN_UNITS = (1000, 100)


def valid_conv_size(size: int, kernel: int, stride: int) -> int:
    """Output length of a 'valid' (unpadded) convolution along one axis, px."""
    return (size - kernel) // stride + 1


class PilotNet(FeatureMapNet):
    """Feed-forward baseline: (B, 78, 200, 3) uint8 -> (B, 1) curvature, 1/m (left positive).

    Same input handling as `ConvHead` (float, /255, NCHW, per-image standardisation). Its "features" are
    the curvature itself (F = 1); its last hidden layer is the 100-unit FC layer after ReLU.

    Attributes:
        in_height, in_width: 78, 200, the image size the network takes, px.
        map_size: (4, 19), the spatial size of the last feature map.
    """

    def __init__(self) -> None:
        super().__init__()
        convs = []
        channels, height, width = 3, self.in_height, self.in_width
        for filters, kernel, stride in PILOTNET_CONV_LAYERS:
            convs.append(nn.Conv2d(channels, filters, kernel, stride=stride))
            channels = filters
            height, width = valid_conv_size(height, kernel, stride), valid_conv_size(width, kernel, stride)
        self.convs = nn.ModuleList(convs)
        self.map_size = (height, width)
        hidden_1, hidden_2 = PILOTNET_HIDDEN_UNITS
        self.fc1 = nn.Linear(channels * height * width, hidden_1)
        self.fc2 = nn.Linear(hidden_1, hidden_2)
        self.out = nn.Linear(hidden_2, 1, bias=False)  # bias-free: see the module docstring

    def maps_from_standardized(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Post-ReLU activation of each convolution, shallow to deep (for saliency).

        Args:
            x: (B, 3, 78, 200) float32, the standardised input (`standardized_input`).

        Returns:
            [(B, 24, 37, 98), (B, 36, 17, 47), (B, 48, 8, 23), (B, 64, 6, 21), (B, 64, 4, 19)].
        """
        maps = []
        for conv in self.convs:
            x = F.relu(conv(x))
            maps.append(x)
        return maps

    def features_and_hidden_from_map(self, deepest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fully connected part: (B, 64, 4, 19) -> curvature (B, 1) in 1/m, and the last hidden layer
        (B, 100) after ReLU (the paper analysed it the way it analysed the recurrent neurons)."""
        x = F.relu(self.fc1(deepest.flatten(1)))
        hidden = F.relu(self.fc2(x))
        return self.out(hidden), hidden
