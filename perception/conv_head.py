"""The NCP paper's convolutional head: a 78x200 camera crop -> 32 sensory features for the NCP.

Lechner, Hasani et al. 2020 (see docs/conventions.md): five 'same'-padded ReLU convolutions, then each of the
8 final channels (10x25 = 250 values) feeds its own dense layer of 4 ReLU units -> 8 x 4 = 32 features.
79,420 parameters: 71,388 in the convolutions and 8,032 in the per-channel dense layers. Optionally
(`feature_norm="batch"`, the NCP policies' default) a parameter-free per-feature norm
(`perception.feature_norm.FeatureNorm`) puts the 32 features into the LTC sensory sigmoids' operating
range; not in the paper.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from perception.feature_net import FeatureMapNet
from perception.feature_norm import make_feature_norm

CONV_LAYERS = ((24, 5, 2), (36, 5, 2), (48, 3, 2), (64, 3, 1), (8, 3, 1))
"""(filters, kernel, stride) of each convolution, shallow to deep."""

UNITS_PER_CHANNEL = 4


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'same' padding of one axis: (before, after), the odd pixel after.

    The output has ceil(size / stride) pixels; PyTorch's symmetric `padding=` cannot give that for
    even sizes with stride 2, hence an explicit asymmetric pad.
    """
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ConvHead(FeatureMapNet):
    """The NCP paper's perception CNN: (B, 78, 200, 3) uint8 -> (B, 32) float32 features.

    Inside: cast to float, /255, NHWC -> NCHW, per-image standardisation, five convolutions with
    TensorFlow 'same' padding and ReLU (78x200 -> 39x100 -> 20x50 -> 10x25 -> 10x25 -> 10x25), then
    8 per-channel dense layers of 4 ReLU units (one batched matmul with weight (8, 250, 4)). Feature
    k*4 + j is unit j of channel k.

    Args:
        feature_norm: `paper` (raw ReLU features) or `batch` (`FeatureNorm` applied to them).

    Attributes:
        out_features: 32, the number of sensory features.
        in_height, in_width: 78, 200, the image size the head takes, px.
    """

    out_features = CONV_LAYERS[-1][0] * UNITS_PER_CHANNEL

    def __init__(self, feature_norm: str = "paper") -> None:
        super().__init__()
        convs = []
        pads = []
        channels, height, width = 3, self.in_height, self.in_width
        for filters, kernel, stride in CONV_LAYERS:
            convs.append(nn.Conv2d(channels, filters, kernel, stride=stride))
            top, bottom = same_padding(height, kernel, stride)
            left, right = same_padding(width, kernel, stride)
            pads.append((left, right, top, bottom))  # F.pad's order: last axis first
            channels, height, width = filters, math.ceil(height / stride), math.ceil(width / stride)
        self.convs = nn.ModuleList(convs)
        self._pads = tuple(pads)
        self.map_size = (height, width)  # (10, 25)
        per_channel = height * width
        self.dense_weight = nn.Parameter(torch.empty(channels, per_channel, UNITS_PER_CHANNEL))
        self.dense_bias = nn.Parameter(torch.empty(channels, UNITS_PER_CHANNEL))
        self.feature_norm = make_feature_norm(feature_norm, self.out_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He (Kaiming) initialisation for ReLU layers, zero biases.

        Why: with PyTorch's default (Kaiming with a=√5) every layer shrinks the signal by ~√3, so at
        initialisation the 32 features are almost constant across frames (std over frames ~1e-3 on
        recorded drives). An LSTM head copes; the LTC's sigmoid synapses (midpoints 0.3-0.8) see no
        signal and the NCP does not learn in a laptop-sized run. He init keeps every layer's
        activations at O(1) (feature std over frames ~0.3).
        """
        for conv in (m for m in self.convs if isinstance(m, nn.Conv2d)):
            nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
        fan_in = self.dense_weight.shape[1]
        bound = math.sqrt(6.0 / fan_in)  # kaiming_uniform for ReLU, per channel's dense layer
        nn.init.uniform_(self.dense_weight, -bound, bound)
        nn.init.zeros_(self.dense_bias)

    def maps_from_standardized(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Post-ReLU activation of each convolution, shallow to deep (for saliency).

        Args:
            x: (B, 3, 78, 200) float32, the standardised input (`standardized_input`).

        Returns:
            [(B, 24, 39, 100), (B, 36, 20, 50), (B, 48, 10, 25), (B, 64, 10, 25), (B, 8, 10, 25)].
        """
        maps = []
        for conv, pad in zip(self.convs, self._pads):
            x = F.relu(conv(F.pad(x, pad)))
            maps.append(x)
        return maps

    def features_and_hidden_from_map(self, deepest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel dense layers, then the feature norm: (B, 8, 10, 25) -> features (B, 32), twice (they
        are the last layer)."""
        x = deepest.flatten(2).unsqueeze(2)  # (B, 8, 1, 250)
        x = torch.matmul(x, self.dense_weight).squeeze(2) + self.dense_bias  # (B, 8, 4)
        features = self.feature_norm(F.relu(x).flatten(1))
        return features, features
