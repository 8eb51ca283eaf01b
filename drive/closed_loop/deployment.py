"""Deployment faults of an onboard computer, as one named setting of the closed loop (`DeploymentConfig`).

A real car's computer reads its camera with timing jitter and lost frames, and its commands reach the
steering late. A setting is written as a label, `drop=0.2,burst=2,jitter=0.5,elapsed=true`, so it can be
an axis of an evaluation (`EvalConfig.deploy`, `drive eval --perturb drop:0,0.1,0.2`) and of a study
plan, like the noise level. Keys (all optional; absent = no fault):

    drop=R        fraction R of the camera frames lost (the policy is not run, the last command holds)
    burst=B       frames lost together (bursts of B; the long-run drop fraction stays R)
    jitter=J      each control step lasts (1 ± J) periods, uniform, in quarter periods (the physics step)
    elapsed=true  the policy is told the measured time since its last frame (continuous-time heads use it);
    elapsed=period  it is stepped one period whatever happened (today's behaviour)
    latency=N     a command reaches the car N control steps after its frame (a queue of N)
    blur=S        onboard camera blur, Gaussian σ in px (`sim.perturbations.Blur`)
    exposure=E    exposure offset, fraction of full scale (`sim.perturbations.BrightnessContrast`)

Every fault is drawn from the episode seed alone, so every policy sees the same drops and the same jitter
on the same frame. The wrappers are in `drive.closed_loop.deployment_wrappers`.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, Literal

NONE = "none"
"""The label of the setting without faults."""

_KEYS = {
    "drop": "drop_rate",
    "burst": "drop_burst",
    "jitter": "jitter",
    "elapsed": "elapsed",
    "latency": "latency_steps",
    "blur": "blur_px",
    "exposure": "exposure",
}


@dataclass(frozen=True)
class DeploymentConfig:
    """One deployment setting (see the module docstring for the keys).

    Attributes:
        drop_rate: long-run fraction of camera frames lost, in [0, 1).
        drop_burst: frames lost per loss event, ≥ 1.
        jitter: half-width of the uniform spread of each step's duration, in periods, in [0, 1).
        elapsed: "true": the policy is told the measured elapsed time; "period": always one period.
        latency_steps: control steps between a frame and its command reaching the car, ≥ 0.
        blur_px: Gaussian blur σ of the camera, px (0: none).
        exposure: brightness offset of the camera, fraction of full scale, in (-1, 1).
    """

    drop_rate: float = 0.0
    drop_burst: int = 1
    jitter: float = 0.0
    elapsed: Literal["true", "period"] = "true"
    latency_steps: int = 0
    blur_px: float = 0.0
    exposure: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.drop_rate < 1.0:
            raise ValueError(f"drop must be in [0, 1), got {self.drop_rate}")
        if self.drop_burst < 1:
            raise ValueError(f"burst must be ≥ 1, got {self.drop_burst}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1) periods, got {self.jitter}")
        if self.elapsed not in ("true", "period"):
            raise ValueError(f"elapsed must be 'true' or 'period', got {self.elapsed!r}")
        if self.latency_steps < 0:
            raise ValueError(f"latency must be ≥ 0 steps, got {self.latency_steps}")
        if self.blur_px < 0:
            raise ValueError(f"blur must be ≥ 0 px, got {self.blur_px}")
        if not -1.0 < self.exposure < 1.0:
            raise ValueError(f"exposure must be in (-1, 1), got {self.exposure}")

    @classmethod
    def parse(cls, label: str) -> DeploymentConfig:
        """`drop=0.2,burst=2,elapsed=period` -> the config; `none` or "" -> no faults. ValueError names
        the bad key or value."""
        label = label.strip()
        if label in ("", NONE):
            return cls()
        values: dict[str, Any] = {}
        for item in label.split(","):
            key, sep, text = item.partition("=")
            key, text = key.strip(), text.strip()
            if not sep or key not in _KEYS:
                raise ValueError(
                    f"deployment setting {label!r}: {item!r} is not KEY=VALUE with KEY in {list(_KEYS)}"
                )
            field_name = _KEYS[key]
            kind = {f.name: f.type for f in dataclasses.fields(cls)}[field_name]
            try:
                values[field_name] = (
                    text if key == "elapsed" else (int(text) if kind == "int" else float(text))
                )
            except ValueError:
                raise ValueError(
                    f"deployment setting {label!r}: {key} takes a number, got {text!r}"
                ) from None
        return cls(**values)

    @property
    def label(self) -> str:
        """The canonical label: the keys that differ from the default, in `_KEYS` order; `none` if none."""
        default = DeploymentConfig()
        parts = []
        for key, field_name in _KEYS.items():
            value = getattr(self, field_name)
            if value != getattr(default, field_name):
                parts.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
        return ",".join(parts) or NONE

    @property
    def active(self) -> bool:
        """Whether anything differs from a fault-free drive."""
        return self != DeploymentConfig()

    def camera_specs(self) -> list[dict[str, Any]]:
        """The camera part as `sim.perturbations` specs (blur, exposure), innermost first."""
        specs: list[dict[str, Any]] = []
        if self.exposure:
            specs.append({"name": "brightness_contrast", "brightness": self.exposure})
        if self.blur_px:
            specs.append({"name": "blur", "sigma_px": self.blur_px})
        return specs


def sweep_labels(axes: list[str]) -> list[str]:
    """`--perturb` arguments -> the settings they sweep: the product of every axis, as canonical labels.

    Each argument is `KEY:V1,V2,…` (e.g. `drop:0,0.1,0.2`, `elapsed:true,period`); several arguments
    combine as a product, the first varying slowest. Repeated settings are given once.

    >>> sweep_labels(["drop:0,0.2", "elapsed:true,period"])
    ['none', 'elapsed=period', 'drop=0.2', 'drop=0.2,elapsed=period']
    """
    choices = []
    for axis in axes:
        key, sep, values = axis.partition(":")
        key = key.strip()
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or key not in _KEYS or not items:
            raise ValueError(f"--perturb {axis!r}: expected KEY:V1,V2,… with KEY in {list(_KEYS)}")
        choices.append([f"{key}={v}" for v in items])
    labels: list[str] = []
    for combo in itertools.product(*choices):
        label = DeploymentConfig.parse(",".join(combo)).label
        if label not in labels:
            labels.append(label)
    return labels
