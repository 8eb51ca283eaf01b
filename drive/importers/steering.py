"""Steering label -> curvature (1/m, left positive) with the bicycle model κ = tan(δ) / L.

δ is the road-wheel angle: given directly (`road_wheel_angle`), from the steering wheel
(`steering_wheel_angle` / steering_ratio), or from a normalized command (`normalized`: ±1 = ±max steer,
Donkeycar's `user/angle`). A `curvature` label is only sign-corrected. The conversion and its
parameters go into meta.json (`Conversion.to_dict`), so an imported label can always be traced back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from drive.importers.config import LabelConfig, VehicleConfig


@dataclass(frozen=True)
class Conversion:
    """A resolved label conversion.

    Attributes:
        kind: road_wheel_angle, steering_wheel_angle, curvature or normalized.
        unit: rad or deg (angles only).
        left_positive: whether a positive raw value steers left.
        wheelbase_m, max_steer_rad, steering_ratio: the vehicle parameters used (0 where unused).
    """

    kind: str
    unit: str
    left_positive: bool
    wheelbase_m: float
    max_steer_rad: float
    steering_ratio: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in meta.json, with the formula in words."""
        return {
            "kind": self.kind,
            "unit": self.unit,
            "left_positive": self.left_positive,
            "wheelbase_m": self.wheelbase_m,
            "max_steer_rad": self.max_steer_rad,
            "steering_ratio": self.steering_ratio,
            "formula": self.formula(),
        }

    def formula(self) -> str:
        """The conversion in one line, e.g. `curvature_1pm = tan(-value_deg*pi/180) / 2.7`."""
        sign = "" if self.left_positive else "-"
        if self.kind == "curvature":
            return f"curvature_1pm = {sign}value_1pm"
        if self.kind == "normalized":
            angle = f"{sign}value*{self.max_steer_rad:g}"
        else:
            angle = f"{sign}value_{self.unit}" + ("*pi/180" if self.unit == "deg" else "")
            if self.kind == "steering_wheel_angle":
                angle = f"({angle})/{self.steering_ratio:g}"
        return f"curvature_1pm = tan({angle}) / {self.wheelbase_m:g}"

    def road_wheel_angle_rad(self, values: np.ndarray) -> np.ndarray:
        """(N,) raw values -> (N,) road-wheel angle δ in rad, left positive (NaN for curvature labels)."""
        raw = np.asarray(values, np.float64) * (1.0 if self.left_positive else -1.0)
        if self.kind == "curvature":
            return np.full_like(raw, np.nan)
        if self.kind == "normalized":
            return raw * self.max_steer_rad
        angle = np.deg2rad(raw) if self.unit == "deg" else raw
        return angle / self.steering_ratio if self.kind == "steering_wheel_angle" else angle

    def curvature_1pm(self, values: np.ndarray) -> np.ndarray:
        """(N,) raw label values -> (N,) curvature in 1/m, left positive (float64)."""
        if self.kind == "curvature":
            return np.asarray(values, np.float64) * (1.0 if self.left_positive else -1.0)
        curvature: np.ndarray = np.tan(self.road_wheel_angle_rad(values)) / self.wheelbase_m
        return curvature


def resolve_conversion(
    label: LabelConfig, vehicle: VehicleConfig, default_kind: str | None, default_left_positive: bool
) -> Conversion:
    """The conversion of `label` for a source whose own label kind is `default_kind` (None: none).

    Raises:
        ValueError: naming the config key that is missing (kind, wheelbase, max steer, steering ratio).
    """
    kind = default_kind if label.kind == "auto" else label.kind
    if kind is None:
        raise ValueError(
            "label.kind is needed for this source: one of road_wheel_angle, steering_wheel_angle, "
            "curvature, normalized (e.g. --set label.kind=road_wheel_angle --set label.unit=deg)"
        )
    left = default_left_positive if label.left_positive is None else label.left_positive
    needs = {"curvature": (), "road_wheel_angle": ("wheelbase_m",)}
    needs["steering_wheel_angle"] = ("wheelbase_m", "steering_ratio")
    needs["normalized"] = ("wheelbase_m", "max_steer_rad")
    for name in needs[kind]:
        if getattr(vehicle, name) <= 0:
            raise ValueError(
                f"vehicle.{name} is needed to turn a {kind} label into curvature (--set vehicle.{name}=...)"
            )
    used = set(needs[kind])
    return Conversion(
        kind=kind,
        unit=label.unit if kind in ("road_wheel_angle", "steering_wheel_angle") else "",
        left_positive=left,
        wheelbase_m=vehicle.wheelbase_m if "wheelbase_m" in used else 0.0,
        max_steer_rad=vehicle.max_steer_rad if "max_steer_rad" in used else 0.0,
        steering_ratio=vehicle.steering_ratio if "steering_ratio" in used else 0.0,
    )


def count_beyond_lock(conversion: Conversion, values: np.ndarray, max_steer_rad: float) -> int:
    """How many raw values ask for more than full lock (|δ| > max_steer_rad, or |normalized| > 1).

    Counted for the summary, never clipped: a label is written as recorded. 0 when no lock is known.
    """
    if conversion.kind == "normalized":
        return int(np.sum(np.abs(np.asarray(values, np.float64)) > 1.0 + 1e-9))
    if conversion.kind == "curvature" or max_steer_rad <= 0:
        return 0
    delta = np.abs(conversion.road_wheel_angle_rad(values))
    return int(np.sum(delta > max_steer_rad + 1e-9))
