"""What every perception CNN here shares: camera image -> standardised input -> conv feature maps -> features.

    images (B, 78, 200, 3) uint8 ─ standardized_input ─► x (B, 3, 78, 200) float32
        ─ maps_from_standardized ─► [conv maps, shallow to deep]
        ─ features_and_hidden_from_map(deepest) ─► features (B, F), last hidden layer (B, H)

The stages are separate methods so that callers can look between them without hooks: VisualBackProp
reads the maps, a robustness study adds noise to the standardised input, and the interpretability
analysis of a feed-forward policy reads its last hidden layer. Subclasses (`ConvHead`, `PilotNet`)
implement `maps_from_standardized` and `features_and_hidden_from_map`.
"""

from __future__ import annotations

import torch
from torch import nn

from perception.preprocess import NCP_INPUT_HEIGHT, NCP_INPUT_WIDTH
from perception.tensor_preprocess import standardize, static_shape


def check_camera_images(images: torch.Tensor, height: int, width: int, where: str) -> None:
    """Raise ValueError unless `images` is a (B, height, width, 3) uint8 tensor."""
    shape = static_shape(images) if isinstance(images, torch.Tensor) else None
    if shape is None or images.dtype != torch.uint8 or len(shape) != 4 or shape[1:] != (height, width, 3):
        got = f"shape {shape} dtype {images.dtype}" if shape is not None else type(images).__name__
        hint = " (channels first? the camera gives channels last)" if shape and shape[1:2] == (3,) else ""
        raise ValueError(f"{where}: expected (B, {height}, {width}, 3) uint8 RGB images, got {got}{hint}")


def camera_to_standardized(images_u8: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 scaled to [0, 1] then standardised per image.

    Standardisation is blind to the scale but for its floor, so the raw 0-255 values are standardised
    with the floor scaled to match (`scale=255`): the same numbers as `standardize(x / 255)` to float
    rounding, one full-image operation fewer, and the transpose moves uint8 (an exported graph's cost).
    """
    x = images_u8.permute(0, 3, 1, 2).to(torch.float32)
    return standardize(x, scale=255.0)


class FeatureMapNet(nn.Module):
    """Base of the perception CNNs: (B, 78, 200, 3) uint8 -> (B, F) float32, in inspectable stages.

    Attributes:
        in_height, in_width: 78, 200, the image size the network takes, px.
    """

    in_height = NCP_INPUT_HEIGHT
    in_width = NCP_INPUT_WIDTH

    def standardized_input(
        self, images: torch.Tensor, input_noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The network's input: (B, 78, 200, 3) uint8 RGB -> (B, 3, 78, 200) float32, standardised per image.

        Args:
            images: (B, 78, 200, 3) uint8 RGB.
            input_noise: None, or (B, 78, 200, 3) float32 added to the standardised image (channels last,
                like the image; units: standard deviations of the image's own values).

        Raises:
            ValueError: `images` is not (B, 78, 200, 3) uint8, or the noise does not match it.
        """
        check_camera_images(images, self.in_height, self.in_width, type(self).__name__)
        x = camera_to_standardized(images)
        if input_noise is None:
            return x
        want = (static_shape(images)[0], self.in_height, self.in_width, 3)
        if tuple(input_noise.shape) != want or not torch.is_floating_point(input_noise):
            raise ValueError(
                f"{type(self).__name__}: input_noise must be {want} float32 like the standardised input, "
                f"got {tuple(input_noise.shape)} {input_noise.dtype}"
            )
        return x + input_noise.to(x).permute(0, 3, 1, 2)

    def maps_from_standardized(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Post-ReLU activation of each convolution, shallow to deep, from (B, 3, 78, 200) input."""
        raise NotImplementedError

    def features_and_hidden_from_map(self, deepest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The layers after the convolutions: deepest map -> (features (B, F), last hidden layer (B, H))."""
        raise NotImplementedError

    def features_from_map(self, deepest: torch.Tensor) -> torch.Tensor:
        """The layers after the convolutions: deepest feature map -> (B, F) features."""
        return self.features_and_hidden_from_map(deepest)[0]

    def feature_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Post-ReLU activation of each convolution, shallow to deep (for saliency), from uint8 images."""
        return self.maps_from_standardized(self.standardized_input(images))

    def features_from_standardized(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 78, 200) standardised input -> (B, F) features."""
        return self.features_from_map(self.maps_from_standardized(x)[-1])

    def forward_with_maps(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Features and the feature maps they came from (one pass).

        Args:
            images: (B, 78, 200, 3) uint8 RGB.

        Returns:
            features (B, F) float32 and the list of `feature_maps`.
        """
        maps = self.feature_maps(images)
        return self.features_from_map(maps[-1]), maps

    def forward(self, images: torch.Tensor, input_noise: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 78, 200, 3) uint8 RGB [+ (B, 78, 200, 3) standardised-space noise] -> (B, F) float32."""
        return self.features_from_standardized(self.standardized_input(images, input_noise))
