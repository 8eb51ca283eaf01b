"""The NCP paper's feed-forward baseline: a PilotNet-like CNN from image straight to curvature.

Lechner, Hasani et al. 2020 (REFERENCE.md): conv 24/36/48/64/64, kernels 5,5,3,3,3, strides 2,2,2,1,1,
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

from perception.conv_head import camera_to_standardized, check_camera_images
from perception.preprocess import NCP_INPUT_HEIGHT, NCP_INPUT_WIDTH

PILOTNET_CONV_LAYERS = ((24, 5, 2), (36, 5, 2), (48, 3, 2), (64, 3, 1), (64, 3, 1))
"""(filters, kernel, stride) of each valid convolution, shallow to deep."""

PILOTNET_HIDDEN_UNITS = (1000, 100)


def valid_conv_size(size: int, kernel: int, stride: int) -> int:
    """Output length of a 'valid' (unpadded) convolution along one axis, px."""
    return (size - kernel) // stride + 1


class PilotNet(nn.Module):
    """Feed-forward baseline: (B, 78, 200, 3) uint8 -> (B, 1) curvature, 1/m (left positive).

    Same input handling as `ConvHead` (float, /255, NCHW, per-image standardisation).

    Attributes:
        in_height, in_width: 78, 200, the image size the network takes, px.
        map_size: (4, 19), the spatial size of the last feature map.
    """

    in_height = NCP_INPUT_HEIGHT
    in_width = NCP_INPUT_WIDTH

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

    def feature_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Post-ReLU activation of each convolution, shallow to deep (for saliency).

        Args:
            images: (B, 78, 200, 3) uint8 RGB.

        Returns:
            [(B, 24, 37, 98), (B, 36, 17, 47), (B, 48, 8, 23), (B, 64, 6, 21), (B, 64, 4, 19)].
        """
        check_camera_images(images, self.in_height, self.in_width, "PilotNet")
        x = camera_to_standardized(images)
        maps = []
        for conv in self.convs:
            x = F.relu(conv(x))
            maps.append(x)
        return maps

    def curvature_from_map(self, deepest: torch.Tensor) -> torch.Tensor:
        """Fully connected part: (B, 64, 4, 19) -> (B, 1) curvature, 1/m."""
        x = F.relu(self.fc1(deepest.flatten(1)))
        x = F.relu(self.fc2(x))
        return self.out(x)

    def forward_with_maps(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Curvature and the feature maps it came from (one pass; the `grad_cam` model_fn form).

        Args:
            images: (B, 78, 200, 3) uint8 RGB.

        Returns:
            curvature (B, 1), 1/m, and the list of `feature_maps`.
        """
        maps = self.feature_maps(images)
        return self.curvature_from_map(maps[-1]), maps

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 78, 200, 3) uint8 RGB -> (B, 1) curvature, 1/m, left positive."""
        return self.curvature_from_map(self.feature_maps(images)[-1])
