"""Conditions (names, lighting facts) and their precomputed layers (sim.embedded.condition_layers)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.conditions import (
    CONDITION_TABLE,
    CONDITIONS,
    get_condition,
    haze_fraction,
    illumination,
    sun_azimuth_for_seed,
)
from sim.embedded.condition_layers import LIGHT_SCALE, build_layers
from sim.embedded.pinhole import CameraConfig

CAM = CameraConfig()


@pytest.fixture(scope="module")
def layers() -> dict:
    return {name: build_layers(get_condition(name), CAM, seed=0) for name in CONDITIONS}


def test_condition_names() -> None:
    assert CONDITIONS == ("summer", "winter", "rain", "night", "dusk")
    assert all(get_condition(n).name == n for n in CONDITIONS)


@pytest.mark.parametrize("bad", ["fog", "Summer", "", None])
def test_unknown_condition_lists_the_valid_names(bad) -> None:
    with pytest.raises(ValueError, match="valid conditions: summer, winter, rain, night, dusk"):
        get_condition(bad)


def test_haze_grows_from_nothing_to_everything() -> None:
    cond = get_condition("rain")
    d = np.array([0.0, 10.0, 60.0, 1e4])
    a = haze_fraction(cond, d)
    assert a[0] == 0 and np.all(np.diff(a) > 0) and a[-1] > 0.999
    assert a[2] == pytest.approx(1 - np.exp(-1))  # rain's e-folding distance is 60 m


def test_daylight_is_uniform_and_headlights_are_a_cone() -> None:
    fwd = np.array([5.0, 20.0, 60.0, 20.0, -5.0])
    left = np.array([0.0, 0.0, 0.0, 20.0, 0.0])
    np.testing.assert_array_equal(illumination(get_condition("summer"), fwd, left), 1.0)
    night = get_condition("night")
    light = illumination(night, fwd, left)
    assert light[0] > light[1] > light[2] > night.ambient  # falls with distance ahead
    assert light[3] < 0.5 * light[1]  # and with bearing off the beam
    assert light[4] == pytest.approx(night.ambient)  # nothing behind the car


def test_sun_azimuth_varies_a_little_with_the_seed() -> None:
    cond = get_condition("dusk")
    az = [sun_azimuth_for_seed(cond, s) for s in range(20)]
    assert az[3] == sun_azimuth_for_seed(cond, 3)
    assert len(set(az)) == 20
    assert max(abs(a - cond.sun_azimuth_rad) for a in az) <= 0.3


def test_layer_shapes(layers: dict) -> None:
    rows = CAM.sky_rows
    pano_w = round(2 * np.pi * CAM.focal_px)
    for name, lay in layers.items():
        assert lay.sky_rows == rows
        assert lay.sky_pano.shape == (rows, pano_w + CAM.width, 3), name
        assert lay.ground.shape == lay.light_mult.shape == lay.light_add.shape == (78 - rows, 200, 3)
        for image in (lay.sky_pano, lay.ground, lay.light_mult, lay.light_add):
            assert image.dtype == np.uint8
        # The panorama's last W columns repeat its first: any yaw is one slice.
        np.testing.assert_array_equal(lay.sky_pano[:, :200], lay.sky_pano[:, pano_w:])


def test_layers_are_deterministic_and_the_seed_moves_the_clouds() -> None:
    summer = get_condition("summer")
    a, b, c = (build_layers(summer, CAM, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.sky_pano, b.sky_pano)
    assert not np.array_equal(a.sky_pano, c.sky_pano)
    np.testing.assert_array_equal(a.light_mult, c.light_mult)  # lighting does not depend on the seed


def test_daylight_fades_into_haze_towards_the_horizon(layers: dict) -> None:
    lay = layers["summer"]
    mult, add = lay.light_mult[:, 100, 0].astype(int), lay.light_add[:, 100, 0].astype(int)
    assert np.all(np.diff(mult) >= 0) and np.all(np.diff(add) <= 0)  # rows go from far to near
    assert mult[-1] > 0.95 * LIGHT_SCALE and mult[0] < 0.5 * LIGHT_SCALE
    # The ground at the horizon takes the haze colour, which is close to the sky's horizon colour.
    horizon = np.asarray(get_condition("summer").sky_horizon)
    assert np.abs(lay.light_add[0, 100].astype(int) - horizon).max() < 40


def test_night_is_lit_by_headlights_only(layers: dict) -> None:
    night = layers["night"].light_mult[..., 0].astype(int)
    summer = layers["summer"].light_mult[..., 0].astype(int)
    far = slice(0, len(night) // 4)  # beyond ~15 m
    assert night[far].mean() < 0.3 * summer[far].mean()
    assert night[:, :20].mean() < 0.5 * summer[:, :20].mean()  # off the beam, near and far
    bottom = night[-1]
    assert bottom[100] > 2 * bottom[0] and bottom[100] > 2 * bottom[-1]  # a cone, not a flood
    assert bottom[100] > 3 * night[2, 100]  # and it fades with distance
    sky = layers["night"].sky_pano
    assert sky.mean() < 40 and sky.max() > 80  # dark, with stars


def test_condition_specific_layers(layers: dict) -> None:
    has = {n: (lay.glare_pano is not None, lay.sheen is not None) for n, lay in layers.items()}
    assert has == {
        "summer": (False, False),
        "winter": (False, False),
        "rain": (False, True),
        "night": (False, False),
        "dusk": (True, False),
    }
    for name, lay in layers.items():
        kind = CONDITION_TABLE[name].precipitation
        assert (lay.precipitation is not None) == (kind != "none")
        if lay.precipitation is not None:
            frames = lay.precipitation
            assert frames.shape[1:] == (78, 200, 3) and len(frames) > 1
            assert not np.array_equal(frames[0], frames[1])
            assert 0 < (frames[0] > 0).any(axis=2).mean() < 0.2  # sparse


def test_dusk_sun_glows_in_the_sky_where_it_stands(layers: dict) -> None:
    cond, lay = get_condition("dusk"), layers["dusk"]
    pano_w = lay.sky_pano.shape[1] - CAM.width
    sun_col = round(-sun_azimuth_for_seed(cond, 0) * lay.px_per_rad) % pano_w
    away_col = (sun_col + pano_w // 2) % pano_w
    brightness = lay.sky_pano[: lay.sky_rows - 4].astype(int).sum(axis=2)
    assert brightness[:, sun_col].mean() > brightness[:, away_col].mean() + 100
    assert lay.glare_pano[:, sun_col].mean() > 3 * lay.glare_pano[:, away_col].mean() + 10


def test_winter_ground_is_snow_and_rain_is_dim() -> None:
    summer, winter, rain = (get_condition(n) for n in ("summer", "winter", "rain"))
    assert min(winter.ground) > 200 and max(summer.ground) < 150
    assert max(rain.light_rgb) < 1 and rain.shadow_rgb is None and rain.road_sheen > 0
    assert sum(winter.road) > sum(summer.road)  # pale, salted asphalt
