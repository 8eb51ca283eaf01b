"""Weather and light conditions of the embedded simulator's camera: palettes and lighting facts.

A `Condition` is a palette plus a few lighting facts (sun, haze, headlights, precipitation). For a given
camera, `sim.embedded.condition_layers.build_layers` turns it into the images the renderer combines
each frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Condition:
    """One weather/light condition: colours (RGB, before lighting) and lighting facts.

    Attributes:
        name: condition name (one of CONDITIONS).
        sky_zenith, sky_horizon: sky colours overhead and at the horizon.
        cloud_rgb, cloud_cover: cloud colour and cover fraction (0 clear, 1 overcast).
        haze_rgb, haze_distance_m: colour distant things fade to, and the e-folding distance, m.
        treeline_rgb: the distant forest silhouette on the horizon (already hazed).
        ground, verge, road, marking: grass (or snow), rough verge, asphalt and paint colours.
        foliage, conifer, trunk: tree colours; `bare_trees` draws deciduous crowns as bare twigs.
        snow: snow on conifers and drifts along the road edges (winter).
        sun_azimuth_rad, sun_elevation_rad: direction to the sun (counter-clockwise from +x, rad).
        shadow_rgb: multiplier of shadowed ground (0..1 per channel), or None for no shadows.
        shadow_elevation_rad: sun elevation used for shadow length (caps absurdly long shadows).
        light_rgb: multiplier of every lit colour (tint and brightness of the light).
        headlights: night: only ambient light plus the car's headlight cone.
        ambient: ambient light level with headlights.
        sun_disc: draw the sun in the sky (a low sun) and its glare over the image.
        glare_strength: strength of the additive sun glare.
        stars: stars in the sky.
        precipitation: "none", "rain" or "snow" (seeded overlays that change from frame to frame).
        road_sheen: strength of the wet-road reflection near the horizon (rain).
    """

    name: str
    sky_zenith: RGB
    sky_horizon: RGB
    cloud_rgb: RGB
    cloud_cover: float
    haze_rgb: RGB
    haze_distance_m: float
    treeline_rgb: RGB
    ground: RGB
    verge: RGB
    road: RGB
    marking: RGB
    foliage: RGB
    conifer: RGB
    trunk: RGB
    bare_trees: bool = False
    snow: bool = False
    sun_azimuth_rad: float = 0.8
    sun_elevation_rad: float = 0.8
    shadow_rgb: tuple[float, float, float] | None = (0.5, 0.52, 0.6)
    shadow_elevation_rad: float = 0.8
    light_rgb: tuple[float, float, float] = (1.0, 1.0, 1.0)
    headlights: bool = False
    ambient: float = 1.0
    sun_disc: bool = False
    glare_strength: float = 0.0
    stars: bool = False
    precipitation: str = "none"
    road_sheen: float = 0.0


_SUMMER = Condition(
    name="summer",
    sky_zenith=(62, 122, 204),
    sky_horizon=(178, 206, 232),
    cloud_rgb=(246, 247, 250),
    cloud_cover=0.35,
    haze_rgb=(184, 204, 222),
    haze_distance_m=150.0,
    treeline_rgb=(88, 116, 104),
    ground=(84, 128, 52),
    verge=(128, 130, 84),
    road=(96, 97, 100),
    marking=(238, 238, 228),
    foliage=(56, 102, 40),
    conifer=(30, 72, 42),
    trunk=(84, 64, 46),
    sun_azimuth_rad=0.9,
    sun_elevation_rad=0.75,
    shadow_elevation_rad=0.75,
)

CONDITION_TABLE: dict[str, Condition] = {
    "summer": _SUMMER,
    "winter": Condition(
        name="winter",
        sky_zenith=(150, 166, 190),
        sky_horizon=(212, 218, 228),
        cloud_rgb=(226, 229, 234),
        cloud_cover=0.75,
        haze_rgb=(210, 215, 224),
        haze_distance_m=110.0,
        treeline_rgb=(128, 136, 144),
        ground=(226, 231, 240),
        verge=(242, 244, 250),
        road=(140, 142, 148),
        marking=(196, 197, 200),
        foliage=(112, 100, 92),
        conifer=(26, 60, 40),
        trunk=(72, 60, 52),
        bare_trees=True,
        snow=True,
        sun_azimuth_rad=2.3,
        sun_elevation_rad=0.3,
        shadow_rgb=(0.8, 0.84, 0.94),
        shadow_elevation_rad=0.3,
        light_rgb=(0.96, 0.97, 1.0),
        precipitation="snow",
    ),
    "rain": Condition(
        name="rain",
        sky_zenith=(92, 97, 106),
        sky_horizon=(148, 152, 158),
        cloud_rgb=(112, 116, 123),
        cloud_cover=1.0,
        haze_rgb=(146, 150, 156),
        haze_distance_m=60.0,
        treeline_rgb=(104, 114, 112),
        ground=(62, 94, 48),
        verge=(84, 84, 62),
        road=(50, 52, 56),
        marking=(196, 196, 190),
        foliage=(40, 74, 36),
        conifer=(26, 56, 36),
        trunk=(52, 44, 36),
        shadow_rgb=None,
        light_rgb=(0.8, 0.82, 0.87),
        precipitation="rain",
        road_sheen=0.3,
    ),
    "night": Condition(
        name="night",
        sky_zenith=(3, 5, 16),
        sky_horizon=(16, 22, 42),
        cloud_rgb=(14, 17, 30),
        cloud_cover=0.25,
        haze_rgb=(8, 10, 18),
        haze_distance_m=200.0,
        treeline_rgb=(5, 7, 10),
        ground=_SUMMER.ground,
        verge=_SUMMER.verge,
        road=_SUMMER.road,
        marking=_SUMMER.marking,
        foliage=_SUMMER.foliage,
        conifer=_SUMMER.conifer,
        trunk=_SUMMER.trunk,
        shadow_rgb=None,
        light_rgb=(1.0, 0.96, 0.86),
        headlights=True,
        ambient=0.06,
        stars=True,
    ),
    "dusk": Condition(
        name="dusk",
        sky_zenith=(58, 66, 128),
        sky_horizon=(246, 162, 92),
        cloud_rgb=(238, 146, 118),
        cloud_cover=0.3,
        haze_rgb=(214, 146, 106),
        haze_distance_m=130.0,
        treeline_rgb=(70, 52, 60),
        ground=_SUMMER.ground,
        verge=_SUMMER.verge,
        road=_SUMMER.road,
        marking=_SUMMER.marking,
        foliage=_SUMMER.foliage,
        conifer=_SUMMER.conifer,
        trunk=_SUMMER.trunk,
        sun_azimuth_rad=3.7,
        sun_elevation_rad=0.05,
        shadow_rgb=(0.45, 0.42, 0.52),
        shadow_elevation_rad=0.22,
        light_rgb=(0.95, 0.72, 0.55),
        sun_disc=True,
        glare_strength=0.9,
    ),
}

CONDITIONS: tuple[str, ...] = tuple(CONDITION_TABLE)
"""Valid condition names: ("summer", "winter", "rain", "night", "dusk")."""


def get_condition(name: str) -> Condition:
    """The condition called `name`; ValueError listing the valid names otherwise."""
    try:
        return CONDITION_TABLE[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown condition {name!r}; valid conditions: {', '.join(CONDITIONS)}") from None


def sun_azimuth_for_seed(condition: Condition, seed: int) -> float:
    """The condition's sun azimuth turned by a small seeded amount (±0.3 rad): shadow phase per seed."""
    return condition.sun_azimuth_rad + float(np.random.default_rng([seed, 0x5A1]).uniform(-0.3, 0.3))


def illumination(condition: Condition, forward_m: np.ndarray, left_m: np.ndarray) -> np.ndarray:
    """Light level (before the colour tint) on the ground at camera-relative positions.

    Daylight is uniform (1); at night it is the ambient level plus the headlight cone: a beam straight
    ahead (Gaussian in bearing, σ 0.4 rad) falling off with distance beyond ~14 m.

    Args:
        condition: the condition.
        forward_m, left_m: (...) positions ahead of and left of the camera, m.

    Returns:
        (...) light levels, 1 = daylight.
    """
    forward_m = np.asarray(forward_m, dtype=np.float64)
    if not condition.headlights:
        return np.ones_like(forward_m)
    bearing = np.arctan2(np.asarray(left_m), np.maximum(forward_m, 1e-3))
    dist2 = forward_m**2 + np.asarray(left_m) ** 2
    beam = 1.4 * np.exp(-((bearing / 0.4) ** 2)) / (1.0 + dist2 / 14.0**2)
    return condition.ambient + np.where(forward_m > 0, beam, 0.0)


def haze_fraction(condition: Condition, distance_m: np.ndarray) -> np.ndarray:
    """(...) fraction of the haze colour mixed into things `distance_m` away (0 near, → 1 far)."""
    return 1.0 - np.exp(-np.asarray(distance_m, dtype=np.float64) / condition.haze_distance_m)
