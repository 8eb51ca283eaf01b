"""Camera perturbations, each a wrapper around a `Simulator` (never a flag threaded through the code).

Every perturbation, noise included, is built from one list of specs by registry name (`PERTURBATIONS`,
`wrap`): `[{"name": "gaussian", "variance": 0.1, "space": "pixel"}, {"name": "blur", "sigma_px": 1.5}]`.
A wrapper's `params()` is its spec again (plus `wrapper`, the class name), so what was applied is read
from the chain (`SimulatorWrapper.chain()`, `applied_noise_variance`), never passed alongside.

`GaussianNoise(variance=…)` is the NCP paper's noise test: zero-mean Gaussian noise of variance σ² added
per pixel to the image scaled to [0, 1] (σ² = 0.1, 0.2, 0.3), then clipped and scaled back to uint8
(`space="pixel"`); `space="standardized"` leaves the image clean and hands the policy the noise for its
standardised input (`Observation.input_noise`). Noise never appears in training. Every wrapper draws from
a generator derived from (reset seed, wrapper, frame), so every model sees the same perturbation on the
same frame.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import statistics
from collections import deque
from typing import Any, Literal

import cv2
import numpy as np

from common.strict_config import ConfigError
from sim.types import INPUT_NOISE_SHAPE, Command, Observation, Simulator
from sim.wrapper import ObservationWrapper, SimulatorWrapper


class GaussianNoise(ObservationWrapper):
    """Zero-mean Gaussian noise of variance σ² (the paper's σ²), in one of two spaces.

    Args:
        sim: the simulator to wrap.
        variance: σ², ≥ 0; 0 changes nothing.
        space: "pixel": N(0, σ²) per pixel and channel added to the image scaled to [0, 1], clipped,
            back to uint8 (the paper; drawn by inverse CDF over `NORMAL_LEVELS` quantiles).
            "standardized": the image is untouched and the observation carries `input_noise`,
            (78, 200, 3) float32 N(0, σ²) draws for the policy to add to its per-image-standardised
            input (σ² in units of that input's variance).
    """

    salt = 1

    def __init__(
        self, sim: Simulator, variance: float, space: Literal["pixel", "standardized"] = "pixel"
    ) -> None:
        if not variance >= 0:
            raise ValueError(f"GaussianNoise: variance must be ≥ 0, got {variance}")
        if space not in ("pixel", "standardized"):
            raise ValueError(f"GaussianNoise: space must be 'pixel' or 'standardized', got {space!r}")
        super().__init__(sim)
        self.variance = float(variance)
        self.space = space
        self._pixel_steps: np.ndarray | None = None  # (NORMAL_LEVELS,) int16, built at the first frame

    def params(self) -> dict[str, Any]:
        return {**super().params(), "variance": self.variance, "space": self.space}

    def _apply(self, obs: Observation) -> Observation:
        if self.space == "pixel" or self.variance == 0:
            return super()._apply(obs)
        noise = self.frame_rng(obs.frame).standard_normal(INPUT_NOISE_SHAPE, dtype=np.float32)
        noise *= np.float32(np.sqrt(self.variance))
        if obs.input_noise is not None:  # independent noises add
            noise += obs.input_noise
        return dataclasses.replace(obs, input_noise=noise)

    def perturb(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.variance == 0:
            return image
        if self._pixel_steps is None:
            # floor(σ·255·z) per normal quantile, clipped to ±256 (beyond, every pixel clips alike).
            steps = np.floor(normal_quantiles() * (np.sqrt(self.variance) * 255.0))
            self._pixel_steps = np.clip(steps, -256, 256).astype(np.int16)
        # uint8 + floor(σ·255·z) saturated to [0, 255] is exactly floor(clip(x + σ·255·z)), the float
        # formula, with z drawn by inverse CDF: 4× cheaper than standard_normal at this image size.
        quantile = uniform_u16(rng, image.size).reshape(image.shape)
        noisy: np.ndarray = cv2.add(image, np.take(self._pixel_steps, quantile), dtype=cv2.CV_8U)
        return noisy


NORMAL_LEVELS = 65_536  # quantiles of the pixel-space noise: z steps < 4e-5 σ near 0, |z| ≤ 4.33


def uniform_u16(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count,) uniform uint16 from `rng`'s raw 64-bit words, four per word (little-endian order, the
    same on every platform): twice as fast as `rng.integers` at a frame's size."""
    words = np.asarray(rng.bit_generator.random_raw(-(-count // 4)), "<u8")
    return words.view("<u2")[:count]


@functools.cache
def normal_quantiles() -> np.ndarray:
    """(NORMAL_LEVELS,) float64 standard normal quantiles Φ⁻¹((k + ½) / NORMAL_LEVELS), k = 0 … 65,535.

    A uniform k picks a draw of N(0, 1) quantised to 65,536 equally likely levels. The tails beyond ±4.33
    (probability 1.5e-5) are cut; for σ² ≥ 0.054 they lie beyond a uint8 image's clipping range anyway.
    """
    normal = statistics.NormalDist()
    return np.array([normal.inv_cdf((k + 0.5) / NORMAL_LEVELS) for k in range(NORMAL_LEVELS)])


class BrightnessContrast(ObservationWrapper):
    """Scales contrast about mid-grey and shifts brightness: out = (x − 128)·contrast + 128 + brightness·255.

    With `jitter`, each frame's brightness and contrast are drawn uniformly within ± jitter of the set
    values (flicker); otherwise they are constant.
    """

    salt = 2

    def __init__(
        self, sim: Simulator, brightness: float = 0.0, contrast: float = 1.0, jitter: float = 0.0
    ) -> None:
        if contrast < 0:
            raise ValueError(f"BrightnessContrast: contrast must be ≥ 0, got {contrast}")
        super().__init__(sim)
        self.brightness, self.contrast, self.jitter = float(brightness), float(contrast), float(jitter)

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "brightness": self.brightness,
            "contrast": self.contrast,
            "jitter": self.jitter,
        }

    def perturb(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        b, c = self.brightness, self.contrast
        if self.jitter:
            b += rng.uniform(-self.jitter, self.jitter)
            c = max(0.0, c + rng.uniform(-self.jitter, self.jitter))
        return cv2.convertScaleAbs(image, alpha=c, beta=128.0 * (1.0 - c) + 255.0 * b)


class Shadows(ObservationWrapper):
    """Dark semi-transparent bands across the image (like the paper's shadow augmentation, at test time).

    Each frame gets `count` quadrilateral bands spanning the image height at random slants, darkened
    by a factor in [1 − strength, 1].
    """

    salt = 3

    def __init__(self, sim: Simulator, count: int = 2, strength: float = 0.6) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"Shadows: strength must be in [0, 1], got {strength}")
        super().__init__(sim)
        self.count, self.strength = int(count), float(strength)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "count": self.count, "strength": self.strength}

    def perturb(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        gain = np.ones((h, w), np.float32)
        for _ in range(self.count):
            x_top, x_bottom = rng.uniform(0, w, 2)
            width = rng.uniform(0.05, 0.25) * w
            quad = np.array([[x_top, 0], [x_top + width, 0], [x_bottom + width, h], [x_bottom, h]], np.int32)
            cv2.fillConvexPoly(gain, quad, float(1.0 - self.strength * rng.uniform(0.5, 1.0)))
        return (image * gain[..., None]).astype(np.uint8)


class Occlusion(ObservationWrapper):
    """Grey rectangles covering a fraction `area` of the image each, at random places per frame."""

    salt = 4

    def __init__(self, sim: Simulator, count: int = 1, area: float = 0.05) -> None:
        if not 0.0 < area < 1.0:
            raise ValueError(f"Occlusion: area must be in (0, 1), got {area}")
        super().__init__(sim)
        self.count, self.area = int(count), float(area)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "count": self.count, "area": self.area}

    def perturb(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out: np.ndarray = image.copy()
        h, w = image.shape[:2]
        side = np.sqrt(self.area)
        ph, pw = max(1, int(h * side)), max(1, int(w * side))
        for _ in range(self.count):
            y, x = rng.integers(0, h - ph + 1), rng.integers(0, w - pw + 1)
            out[y : y + ph, x : x + pw] = 128
        return out


class Blur(ObservationWrapper):
    """Gaussian blur with standard deviation `sigma_px` (defocus, rain on the lens)."""

    salt = 5

    def __init__(self, sim: Simulator, sigma_px: float = 1.5) -> None:
        if sigma_px <= 0:
            raise ValueError(f"Blur: sigma_px must be > 0, got {sigma_px}")
        super().__init__(sim)
        self.sigma_px = float(sigma_px)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "sigma_px": self.sigma_px}

    def perturb(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return cv2.GaussianBlur(image, (0, 0), self.sigma_px)


class SaltPepper(ObservationWrapper):
    """Sets a fraction `amount` of the pixels to black or white (dead pixels, transmission errors)."""

    salt = 6

    def __init__(self, sim: Simulator, amount: float = 0.02) -> None:
        if not 0.0 <= amount <= 1.0:
            raise ValueError(f"SaltPepper: amount must be in [0, 1], got {amount}")
        super().__init__(sim)
        self.amount = float(amount)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "amount": self.amount}

    def perturb(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out: np.ndarray = image.copy()
        hit = rng.random(image.shape[:2]) < self.amount
        out[hit] = np.where(rng.random(int(hit.sum())) < 0.5, 0, 255).astype(np.uint8)[:, None]
        return out


class FrameDelay(SimulatorWrapper):
    """The policy sees the camera frame from `frames` control steps ago (latency in the camera path).

    Speed and timestamps stay current; the image is the old one. At the start of an episode the first
    frame is repeated until the delay line is full.
    """

    def __init__(self, sim: Simulator, frames: int = 2) -> None:
        if frames < 0:
            raise ValueError(f"FrameDelay: frames must be ≥ 0, got {frames}")
        super().__init__(sim)
        self.frames = int(frames)
        self._line: deque[np.ndarray] = deque(maxlen=self.frames + 1)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "frames": self.frames}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        obs, info = self.sim.reset(seed=seed, options=options)
        self._line.clear()
        self._line.extend([obs.image] * (self.frames + 1))
        return obs, info

    def step(self, command: Command) -> tuple[Observation, dict[str, Any]]:
        obs, info = self.sim.step(command)
        self._line.append(obs.image)
        return dataclasses.replace(obs, image=self._line[0]), info


class FrameDrop(ObservationWrapper):
    """With probability `probability` a frame is lost and the previous image is delivered again."""

    salt = 7

    def __init__(self, sim: Simulator, probability: float = 0.1) -> None:
        if not 0.0 <= probability < 1.0:
            raise ValueError(f"FrameDrop: probability must be in [0, 1), got {probability}")
        super().__init__(sim)
        self.probability = float(probability)
        self._last: np.ndarray | None = None

    def params(self) -> dict[str, Any]:
        return {**super().params(), "probability": self.probability}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        self._last = None
        return super().reset(seed=seed, options=options)

    def perturb(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self._last is not None and rng.random() < self.probability:
            return self._last
        self._last = image
        return image


PERTURBATIONS: dict[str, type[SimulatorWrapper]] = {
    "gaussian": GaussianNoise,
    "brightness_contrast": BrightnessContrast,
    "shadows": Shadows,
    "occlusion": Occlusion,
    "blur": Blur,
    "salt_pepper": SaltPepper,
    "frame_delay": FrameDelay,
    "frame_drop": FrameDrop,
}
"""Perturbations by name, for configs: `{"name": "blur", "sigma_px": 2.0}`. A new one: its class here
and one line in this table (its `params()` adds its arguments to `super().params()`)."""

_NAMES = {cls: name for name, cls in PERTURBATIONS.items()}


def perturbation_name(wrapper: SimulatorWrapper) -> str | None:
    """The registry name of `wrapper`'s class, None if it is not a registered perturbation."""
    return _NAMES.get(type(wrapper))


def gaussian_spec(variance: float, space: str = "pixel") -> list[dict[str, Any]]:
    """The perturbation specs of Gaussian image noise σ² = `variance`: none for 0."""
    return [{"name": "gaussian", "variance": float(variance), "space": space}] if variance else []


def wrap(sim: Simulator, specs: list[dict[str, Any]]) -> Simulator:
    """Apply perturbations described as `[{"name": ..., **params}, ...]`, innermost first.

    Raises:
        ConfigError: an unknown name or parameter (named), or a value the perturbation refuses.
    """
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise ConfigError(f"perturbations[{i}]: expected a mapping with a name, got {spec!r}")
        spec = dict(spec)
        name = spec.pop("name", None)
        cls = PERTURBATIONS.get(name)
        if cls is None:
            raise ConfigError(
                f"perturbations[{i}]: unknown perturbation {name!r}; known: {sorted(PERTURBATIONS)}"
            )
        valid = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "sim")]
        unknown = sorted(set(spec) - set(valid))
        if unknown:
            raise ConfigError(
                f"perturbations[{i}] ({name}): unknown parameter {unknown[0]!r}; valid: {valid}"
            )
        try:
            sim = cls(sim, **spec)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"perturbations[{i}] ({name}): {err}") from None
    return sim


def check_specs(specs: list[dict[str, Any]]) -> None:
    """Raise the ConfigError `wrap` would for `specs`, without a simulator (configs check early)."""
    wrap(None, specs)  # type: ignore[arg-type]  # the constructors only store the simulator


def applied_noise_variance(sim: Simulator) -> float:
    """Total Gaussian noise variance σ² of the wrapper chain around `sim`, read from `chain()`
    (independent noises add; 0 without any)."""
    chain = sim.chain() if isinstance(sim, SimulatorWrapper) else []
    return float(sum(p["variance"] for p in chain if p.get("name") == "gaussian"))
