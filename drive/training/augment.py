"""Training-time augmentation of camera windows: shadow bands, brightness/contrast/gamma, camera shifts.

The NCP paper augments with random semi-transparent dark and light "shadow" bands (docs/conventions.md).
We add photometric jitter and optional small horizontal camera shifts with a label correction. Noise
injection is deliberately absent: Gaussian noise is the evaluation's perturbation, never a training input.

Consistency over time (choice): every parameter is drawn once per *window*, so all 16 frames share the
lighting, the shift and the bands; a band only slides along its normal by a drawn speed per frame, as a
shadow on the road slides past a moving camera. Drawing per frame would make shadows flicker, a cue the
recurrent head could learn that never happens on a real road.

Order: the shift (the camera's pose), then the bands (in the scene), then gamma, contrast and brightness
(the camera's exposure), the last three as one 256-entry lookup table per window.

Determinism: `augment_window(..., seed, epoch, index)` draws from `numpy.random.default_rng([seed,
epoch, index])`, so a window's augmentation depends on nothing else (not the worker, the rank, the
batch or a resume).

Photometric jitter and the network: the conv heads standardise each image (zero mean, unit variance), which
undoes a global brightness offset and contrast gain exactly, except where pixels clip at 0 or 255. The
jitter therefore mainly teaches robustness to saturation; gamma (nonlinear) and the bands survive the
standardisation and carry most of the augmentation's effect.

Camera-shift label correction (model): shifting the image content right by s px imitates the camera
yawed *left* by ψ = atan(s / f), f = (W / 2) / tan(hfov / 2) the focal length in pixels (a pure image
shift is the small-angle approximation of a yaw; the perspective's parallax is ignored). The expert
would steer back to its original heading: a pure-pursuit arc to the point it was aiming at, `lookahead`
metres ahead, which now lies at angle −ψ, so the label gains Δκ = 2·sin(−ψ) / lookahead (1/m, left
positive): content shifted right → steer right (negative). Exposed columns repeat the edge pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drive.training.train_config import AugmentConfig


@dataclass(frozen=True)
class ShadowBand:
    """One straight semi-transparent band across the image.

    Attributes:
        angle_rad: direction of the band's normal in the image (0: vertical band, π/2: horizontal band).
        offset_px: signed distance of the band's centre line from the image centre at frame 0, px.
        speed_px: drift of the centre line along the normal per frame, px.
        width_px: band width, px.
        strength: opacity in [0, 1].
        light: True for a light band (blend towards white), False for a dark one (scale towards black).
    """

    angle_rad: float
    offset_px: float
    speed_px: float
    width_px: float
    strength: float
    light: bool


@dataclass(frozen=True)
class WindowAugmentation:
    """Everything drawn for one window.

    Attributes:
        bands: shadow bands (may be empty).
        brightness: additive change, fraction of full scale.
        contrast: contrast gain around the window's mean grey (1 = unchanged).
        gamma: exponent on the [0, 1] image (1 = unchanged).
        shift_px: horizontal shift of the content, px, positive = right (0 = none).
    """

    bands: tuple[ShadowBand, ...] = ()
    brightness: float = 0.0
    contrast: float = 1.0
    gamma: float = 1.0
    shift_px: int = 0

    @property
    def photometric(self) -> bool:
        """Whether brightness, contrast or gamma change anything."""
        return (self.brightness, self.contrast, self.gamma) != (0.0, 1.0, 1.0)


def shift_label_correction_1pm(
    shift_px: float, image_width_px: int, camera_hfov_deg: float, lookahead_m: float
) -> float:
    """Curvature added to the label when the image content is shifted `shift_px` to the right, 1/m.

    See the module docstring: Δκ = −2·sin(atan(s / f)) / lookahead, f = (W / 2) / tan(hfov / 2).
    """
    focal_px = (image_width_px / 2.0) / math.tan(math.radians(camera_hfov_deg) / 2.0)
    yaw_left_rad = math.atan(shift_px / focal_px)
    return -2.0 * math.sin(yaw_left_rad) / lookahead_m


def draw_augmentation(
    rng: np.random.Generator, config: AugmentConfig, height: int, width: int
) -> WindowAugmentation:
    """Draw one window's augmentation (the draws happen in a fixed order: reproducible per generator)."""
    if not config.enabled:
        return WindowAugmentation()
    bands = []
    if rng.random() < config.shadow_probability:
        for _ in range(int(rng.integers(1, config.shadow_max_bands + 1))):
            angle = float(rng.uniform(0.0, math.pi))
            half_extent = 0.5 * (abs(math.cos(angle)) * width + abs(math.sin(angle)) * height)
            bands.append(
                ShadowBand(
                    angle_rad=angle,
                    offset_px=float(rng.uniform(-half_extent, half_extent)),
                    speed_px=float(rng.uniform(-1.0, 1.0) * config.shadow_speed_frac * height),
                    width_px=float(rng.uniform(*config.shadow_width_frac) * width),
                    strength=float(rng.uniform(*config.shadow_strength)),
                    light=bool(rng.random() < config.shadow_light_probability),
                )
            )
    brightness = float(rng.uniform(-config.brightness, config.brightness))
    contrast = float(rng.uniform(1.0 - config.contrast, 1.0 + config.contrast))
    gamma = float(rng.uniform(1.0 - config.gamma, 1.0 + config.gamma))
    shift = 0
    if config.shift_max_px > 0 and rng.random() < config.shift_probability:
        shift = int(round(rng.uniform(-config.shift_max_px, config.shift_max_px)))
    return WindowAugmentation(tuple(bands), brightness, contrast, gamma, shift)


def band_mask(band: ShadowBand, frames: int, height: int, width: int) -> np.ndarray:
    """Opacity of a band in each frame, (frames, height, width) float32 in [0, 1], edges ~15 % soft."""
    ys = np.arange(height, dtype=np.float32)[:, None] - (height - 1) / 2.0
    xs = np.arange(width, dtype=np.float32)[None, :] - (width - 1) / 2.0
    distance = xs * math.cos(band.angle_rad) + ys * math.sin(band.angle_rad)  # (H, W) along the normal
    centres = band.offset_px + band.speed_px * np.arange(frames, dtype=np.float32)
    soft = max(1.0, 0.15 * band.width_px)
    inside = band.width_px / 2.0 - np.abs(distance[None] - centres[:, None, None])
    opacity: np.ndarray = np.clip(inside / soft + 0.5, 0.0, 1.0).astype(np.float32)
    return opacity


def shift_frames(frames_u8: np.ndarray, shift_px: int) -> np.ndarray:
    """Shift (T, H, W, 3) frames' content right by `shift_px` (left if negative), repeating the edge."""
    if shift_px == 0:
        return frames_u8
    width = frames_u8.shape[2]
    s = max(-width, min(width, shift_px))
    source = np.clip(np.arange(width) - s, 0, width - 1)
    return frames_u8[:, :, source]


def photometric_lut(frames_u8: np.ndarray, aug: WindowAugmentation) -> np.ndarray:
    """The window's gamma, contrast and brightness as one 256-entry uint8 lookup table.

    value -> ((value / 255) ** gamma - mean) * contrast + mean + brightness, clipped, where `mean` is the
    window's mean after the gamma (from the histogram, so the table costs no float pass over the pixels).
    """
    levels = (np.arange(256, dtype=np.float64) / 255.0) ** aug.gamma
    histogram = np.bincount(frames_u8.ravel(), minlength=256)
    mean = float(histogram @ levels) / max(frames_u8.size, 1)
    mapped = (levels - mean) * aug.contrast + mean + aug.brightness
    return np.clip(mapped * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)


def apply_augmentation(
    frames_u8: np.ndarray, labels_1pm: np.ndarray, aug: WindowAugmentation, config: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Apply a drawn augmentation to one window.

    Args:
        frames_u8: (T, H, W, 3) uint8 RGB camera frames.
        labels_1pm: (T,) expert curvature, 1/m.
        aug: the drawn parameters.
        config: the augmentation config (camera FOV and lookahead for the shift's label correction).

    Returns:
        (T, H, W, 3) uint8 frames and (T,) float32 labels (a fresh array when anything changed).
    """
    if frames_u8.ndim != 4 or frames_u8.shape[-1] != 3 or frames_u8.dtype != np.uint8:
        raise ValueError(
            f"augment: expected (T, H, W, 3) uint8 frames, got {frames_u8.shape} {frames_u8.dtype}"
        )
    labels = np.asarray(labels_1pm, np.float32)
    t, height, width, _ = frames_u8.shape
    if not aug.bands and aug.shift_px == 0 and not aug.photometric:
        return frames_u8, labels
    if aug.shift_px:
        frames_u8 = shift_frames(frames_u8, aug.shift_px)
        correction = shift_label_correction_1pm(
            aug.shift_px, width, config.camera_hfov_deg, config.shift_lookahead_m
        )
        labels = labels + np.float32(correction)
    if aug.bands:
        x: np.ndarray = frames_u8.astype(np.float32)
        for band in aug.bands:
            mask = band_mask(band, t, height, width)[..., None] * band.strength
            x = x + mask * (255.0 - x) if band.light else x * (1.0 - mask)
        frames_u8 = np.clip(x + 0.5, 0.0, 255.0).astype(np.uint8)
    if aug.photometric:
        frames_u8 = photometric_lut(frames_u8, aug)[frames_u8]
    return frames_u8, labels


def augment_window(
    frames_u8: np.ndarray, labels_1pm: np.ndarray, config: AugmentConfig, seed: int, epoch: int, index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Augment window `index` of epoch `epoch` reproducibly (generator seeded by (seed, epoch, index))."""
    rng = np.random.default_rng([seed, epoch, index])
    aug = draw_augmentation(rng, config, frames_u8.shape[1], frames_u8.shape[2])
    return apply_augmentation(frames_u8, labels_1pm, aug, config)
