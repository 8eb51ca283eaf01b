"""Perturbation wrappers: the paper's noise statistics, determinism per (seed, frame), delays, drops."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from sim.perturbations import (
    NORMAL_LEVELS,
    PERTURBATIONS,
    Blur,
    BrightnessContrast,
    FrameDelay,
    FrameDrop,
    GaussianNoise,
    Occlusion,
    SaltPepper,
    Shadows,
    applied_noise_variance,
    gaussian_spec,
    normal_quantiles,
    uniform_u16,
    wrap,
)
from sim.types import INPUT_NOISE_SHAPE, Command
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
    sim = wrap(FakeSim(), [{"name": "gaussian", "variance": 0.2}, {"name": "frame_delay", "frames": 1}])
    assert [p["wrapper"] for p in sim.chain()] == ["FrameDelay", "GaussianNoise"]
    assert sim.chain()[1] == {
        "wrapper": "GaussianNoise",
        "name": "gaussian",
        "variance": 0.2,
        "space": "pixel",
    }
    assert isinstance(sim.unwrapped, FakeSim)
    with pytest.raises(ValueError, match="unknown perturbation 'fog'"):
        wrap(FakeSim(), [{"name": "fog"}])
    with pytest.raises(ValueError, match=r"perturbations\[0\] \(blur\): unknown parameter 'radius'"):
        wrap(FakeSim(), [{"name": "blur", "radius": 3}])
    with pytest.raises(ValueError, match="space must be"):
        wrap(FakeSim(), [{"name": "gaussian", "variance": 0.1, "space": "latent"}])
    assert set(PERTURBATIONS) >= {"gaussian", "shadows", "occlusion", "blur", "salt_pepper"}


def test_a_chain_rebuilds_from_its_own_params_and_reports_its_noise():
    specs = [*gaussian_spec(0.1), {"name": "blur", "sigma_px": 1.5}, *gaussian_spec(0.05, "standardized")]
    sim = wrap(FakeSim(), specs)
    # params() is the spec again: the chain (outermost first) rebuilds the same wrappers.
    rebuilt = [{k: v for k, v in p.items() if k != "wrapper"} for p in reversed(sim.chain())]
    assert rebuilt == specs
    assert applied_noise_variance(sim) == pytest.approx(0.15)
    assert applied_noise_variance(FakeSim()) == 0.0 and gaussian_spec(0.0) == []


def _pixel_noise_reference(image: np.ndarray, seed: int, frame: int, variance: float) -> np.ndarray:
    """The float formula floor(clip(x + σ·255·z)), z = Φ⁻¹((k + ½)/65,536) for the wrapper's uniform k."""
    rng = np.random.default_rng((seed, 1, frame))  # salt 1: GaussianNoise's frame generator
    words = rng.bit_generator.random_raw(image.size // 4)  # each 64-bit word: 4 indices, low bits first
    k = ((words[:, None] >> np.array([0, 16, 32, 48], np.uint64)) & np.uint64(0xFFFF)).reshape(image.shape)
    normal = statistics.NormalDist()
    z = np.array([normal.inv_cdf((int(i) + 0.5) / 65_536) for i in k.ravel()]).reshape(image.shape)
    return np.floor(np.clip(image + np.sqrt(variance) * 255.0 * z, 0, 255)).astype(np.uint8)


def test_pixel_space_is_the_float_formula_at_the_drawn_quantiles():
    clean = _frames(FakeSim(), 4, seed=7)
    noisy = _frames(GaussianNoise(FakeSim(), 0.2, space="pixel"), 4, seed=7)
    for frame, (c, n) in enumerate(zip(clean, noisy)):
        np.testing.assert_array_equal(n, _pixel_noise_reference(c, 7, frame, 0.2))


@pytest.mark.parametrize("variance", [0.0001, 0.0005])
def test_pixel_noise_is_the_normal_asked_for_floored(variance):
    # σ small enough that nothing clips at FakeSim's levels (≥ 28): the noise is floor(σ·255·z), of mean
    # −½ (the uint8 cast truncates, as the float formula always did) and variance σ²·255² + 1/12.
    clean = _frames(FakeSim(64, 64), 3, seed=2)
    noisy = _frames(GaussianNoise(FakeSim(64, 64), variance), 3, seed=2)
    draws = np.concatenate([n.astype(np.float64).ravel() - c.ravel() for c, n in zip(clean, noisy)])
    sd_px = np.sqrt(variance) * 255.0
    assert abs(draws.mean() + 0.5) < 5 * sd_px / np.sqrt(draws.size)
    assert abs(draws.var() / (sd_px**2 + 1 / 12) - 1) < 5 * np.sqrt(2 / draws.size)


def test_normal_quantiles_are_symmetric_and_standard():
    z = normal_quantiles()
    assert z.shape == (NORMAL_LEVELS,) and np.all(np.diff(z) > 0)
    np.testing.assert_allclose(z, -z[::-1], atol=1e-12)
    assert abs(z.var() - 1) < 1e-3 and z.max() == pytest.approx(4.3249, abs=1e-4)


def _input_noise(sim, n: int, seed: int, curvature: float = 0.0) -> list[np.ndarray]:
    obs, _ = sim.reset(seed=seed)
    out = [obs]
    for _ in range(n - 1):
        obs, _ = sim.step(Command(curvature))
        out.append(obs)
    return out


def test_standardized_noise_leaves_the_image_and_has_the_variance_asked_for():
    variance = 0.2
    clean = _input_noise(FakeSim(), 3, seed=4)
    noisy = _input_noise(GaussianNoise(FakeSim(), variance, space="standardized"), 3, seed=4)
    assert all(o.input_noise is None for o in clean)
    draws = []
    for c, n in zip(clean, noisy):
        np.testing.assert_array_equal(n.image, c.image)  # the camera image is untouched
        assert n.input_noise.shape == INPUT_NOISE_SHAPE == (78, 200, 3)
        assert n.input_noise.dtype == np.float32
        draws.append(n.input_noise.astype(np.float64).ravel())
    x = np.concatenate(draws)  # 140 400 i.i.d. draws
    # Sampling tolerances: sd(mean) = σ/√n ≈ 1.2e-3, sd(var) = σ²·√(2/n) ≈ 7.5e-4; 5 sd each.
    assert abs(x.mean()) < 5 * np.sqrt(variance / x.size)
    assert abs(x.var() - variance) < 5 * variance * np.sqrt(2 / x.size)
    assert not np.array_equal(noisy[1].input_noise, noisy[2].input_noise)  # fresh noise per frame


def test_standardized_noise_depends_on_seed_and_frame_only():
    a = _input_noise(GaussianNoise(FakeSim(), 0.1, space="standardized"), 4, seed=1)
    b = _input_noise(GaussianNoise(FakeSim(), 0.1, space="standardized"), 4, seed=1, curvature=0.05)
    c = _input_noise(GaussianNoise(FakeSim(), 0.1, space="standardized"), 4, seed=2)
    assert all(np.array_equal(x.input_noise, y.input_noise) for x, y in zip(a, b))
    assert not np.array_equal(a[1].input_noise, c[1].input_noise)
    # Outer image perturbations keep the noise of an inner standardized one.
    blurred = _input_noise(Blur(GaussianNoise(FakeSim(), 0.1, space="standardized"), 1.0), 4, seed=1)
    assert all(np.array_equal(x.input_noise, y.input_noise) for x, y in zip(a, blurred))


def test_input_noise_shape_is_the_network_input():
    from perception.preprocess import NCP_INPUT_HEIGHT, NCP_INPUT_WIDTH

    assert INPUT_NOISE_SHAPE == (NCP_INPUT_HEIGHT, NCP_INPUT_WIDTH, 3)


def test_uniform_u16_is_uniform_and_takes_any_count():
    rng = np.random.default_rng(3)
    assert uniform_u16(rng, 10).shape == (10,) and uniform_u16(rng, 10).dtype == np.uint16
    draws = uniform_u16(rng, 400_000)
    counts = np.bincount(draws >> 12, minlength=16)  # 16 equal bins of the 16-bit range
    expected = draws.size / 16
    assert ((counts - expected) ** 2 / expected).sum() < 50  # chi-square, 15 dof: p ≈ 1e-5
    for lane in range(4):  # each 16-bit lane of the words is uniform by itself
        assert abs(draws[lane::4].mean() / 65_535 - 0.5) < 0.005
