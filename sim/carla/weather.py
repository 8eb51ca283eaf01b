"""Our conditions as CARLA weather.

| condition | CARLA weather                                                                     |
|-----------|-----------------------------------------------------------------------------------|
| summer    | `ClearNoon`                                                                       |
| rain      | `HardRainNoon` (rain, puddles, wet road)                                          |
| night     | `ClearNight` (0.9.16 has night presets; the sun is below the horizon)             |
| dusk      | `ClearSunset`                                                                     |
| winter    | approximated, CARLA has no snow: overcast, light fog, damp road, a low sun (below) |

Winter: cloudiness 85 %, fog density 15 % from 10 m, wetness 40 % with a few deposits (slush), wind
30 %, the sun 12° above the horizon (a northern winter noon). Surfaces stay snow-free, so a policy
trained on embedded winter scenes (snow on the verges) sees a different world here: report CARLA
"winter" as what it is, a grey, damp, low-sun day.
"""

from __future__ import annotations

from typing import Any

from sim.carla.lazy_import import import_carla
from sim.conditions import CONDITIONS

PRESETS = {"summer": "ClearNoon", "rain": "HardRainNoon", "night": "ClearNight", "dusk": "ClearSunset"}
"""Conditions that map onto a named `carla.WeatherParameters` preset."""

WINTER = {
    "cloudiness": 85.0,
    "precipitation": 0.0,
    "precipitation_deposits": 10.0,
    "wind_intensity": 30.0,
    "sun_azimuth_angle": 180.0,
    "sun_altitude_angle": 12.0,
    "fog_density": 15.0,
    "fog_distance": 10.0,
    "fog_falloff": 1.0,
    "wetness": 40.0,
}
"""`carla.WeatherParameters` fields of the winter approximation (the rest as in `ClearNoon`)."""

_WEATHER_FIELDS = (
    "cloudiness",
    "precipitation",
    "precipitation_deposits",
    "wind_intensity",
    "sun_azimuth_angle",
    "sun_altitude_angle",
    "fog_density",
    "fog_distance",
    "fog_falloff",
    "wetness",
    "scattering_intensity",
    "mie_scattering_scale",
    "rayleigh_scattering_scale",
    "dust_storm",
)


def weather_for(condition: str) -> Any:
    """The `carla.WeatherParameters` for one of our conditions.

    Raises:
        ValueError: unknown condition (the message lists the valid ones).
    """
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; valid: {', '.join(CONDITIONS)}")
    carla = import_carla()
    if condition in PRESETS:
        return getattr(carla.WeatherParameters, PRESETS[condition])
    if condition == "winter":
        base = carla.WeatherParameters.ClearNoon  # scattering and the rest as on a clear day
        fields = {name: getattr(base, name) for name in _WEATHER_FIELDS}
        return carla.WeatherParameters(**{**fields, **WINTER})
    raise ValueError(f"condition {condition!r} has no CARLA weather yet")  # pragma: no cover
