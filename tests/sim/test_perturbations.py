"""Perturbation wrappers: the paper's noise statistics, determinism per (seed, frame), delays, drops."""

from __future__ import annotations

import numpy as np
import pytest

from sim.perturbations import (
    PERTURBATIONS,
    Blur,
    BrightnessContrast,
    FrameDelay,
    FrameDrop,
    GaussianNoise,
    Occlusion,
    SaltPepper,
    Shadows,
    wrap,
)
from sim.types import Command
from tests.sim.fakes import FakeSim


def _frames(sim, n: int, seed: int = 0, curvature: float = 0.0) -> list[np.ndarray]:
    obs, _ = sim.reset(seed=seed)
    out = [obs.image]
    for _ in range(n - 1):
        obs, _ = sim.step(Command(curvature))
        out.append(obs.image)
    return out


def test_gaussian_noise_has_the_papers_variance_on_the_unit_image():
    sim = GaussianNoise(FakeSim(64, 64), variance=0.01)
    obs, _ = sim.reset(seed=3)
    clean = np.full(obs.image.shape, 28, np.float64)  # frame 0 level
    clean[:] = 28
    # Mid-grey frames keep clipping negligible at σ = 0.1 on the [0, 1] scale.
    for _ in range(100):
        obs, _ = sim.step(Command(0.0))
    level = (obs.frame % 200) + 28
    delta = (obs.image.astype(np.float64) - level) / 255.0
    assert abs(delta.mean()) < 0.01
    assert delta.var() == pytest.approx(0.01, rel=0.1)


def test_noise_depends_on_seed_and_frame_only():
    a = _frames(GaussianNoise(FakeSim(), 0.1), 5, seed=1)
    b = _frames(GaussianNoise(FakeSim(), 0.1), 5, seed=1, curvature=0.05)  # another policy, same noise
    c = _frames(GaussianNoise(FakeSim(), 0.1), 5, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    assert not np.array_equal(a[1] - a[1].mean(), a[2] - a[2].mean())


def test_zero_variance_is_the_identity_and_negative_is_refused():
    clean = _frames(FakeSim(), 3)
    same = _frames(GaussianNoise(FakeSim(), 0.0), 3)
    assert all(np.array_equal(x, y) for x, y in zip(clean, same))
    with pytest.raises(ValueError, match="variance"):
        GaussianNoise(FakeSim(), -0.1)


def test_frame_delay_shows_the_old_frame():
    frames = _frames(FrameDelay(FakeSim(), frames=2), 6)
    levels = [int(f[0, 0, 0]) - 28 for f in frames]
    assert levels == [0, 0, 0, 1, 2, 3]


def test_frame_drop_repeats_frames_at_the_rate_asked():
    frames = _frames(FrameDrop(FakeSim(), probability=0.3), 400)
    repeats = sum(np.array_equal(a, b) for a, b in zip(frames, frames[1:]))
    assert 0.2 < repeats / 399 < 0.4


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (BrightnessContrast, {"brightness": 0.1, "contrast": 0.5, "jitter": 0.1}),
        (Shadows, {"count": 2, "strength": 0.7}),
        (Occlusion, {"count": 2, "area": 0.1}),
        (Blur, {"sigma_px": 2.0}),
        (SaltPepper, {"amount": 0.1}),
    ],
)
def test_other_perturbations_change_images_deterministically(cls, kwargs):
    def run(seed):
        sim = cls(FakeSim(48, 64), **kwargs)
        sim.sim.shape = (48, 64, 3)
        obs, _ = sim.reset(seed=seed)
        return obs.image

    clean, _ = FakeSim(48, 64).reset(seed=0)
    if cls is Blur:  # blur of a uniform image is the image; use a textured one
        img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
        out = Blur(FakeSim(), 2.0).perturb(img, np.random.default_rng(0))
        assert out.std() < img.std()
        return
    a, b = run(5), run(5)
    assert np.array_equal(a, b) and a.dtype == np.uint8 and a.shape == (48, 64, 3)
    assert not np.array_equal(a, clean.image)


def test_wrap_by_name_records_parameters():
    sim = wrap(FakeSim(), [{"name": "gaussian_noise", "variance": 0.2}, {"name": "frame_delay", "frames": 1}])
    assert [p["wrapper"] for p in sim.chain()] == ["FrameDelay", "GaussianNoise"]
    assert sim.chain()[1]["variance"] == 0.2
    assert isinstance(sim.unwrapped, FakeSim)
    with pytest.raises(ValueError, match="known"):
        wrap(FakeSim(), [{"name": "fog"}])
    with pytest.raises(ValueError, match="blur"):
        wrap(FakeSim(), [{"name": "blur", "radius": 3}])
    assert set(PERTURBATIONS) >= {"gaussian_noise", "shadows", "occlusion", "blur", "salt_pepper"}
