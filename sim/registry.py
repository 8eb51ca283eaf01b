"""The one place that builds a simulator by backend name and wraps it (safety driver, perturbations).

Backends: `embedded` (default, numpy + OpenCV) and `carla` (imported lazily; needs the carla extra and a
running server). Wrapping order is fixed: SafetyDriver directly on the simulator, perturbations
outside it, so a teleported frame is perturbed like any other.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sim.perturbations import GaussianNoise, wrap
from sim.safety_driver import SafetyDriver, SafetyDriverConfig
from sim.types import Simulator

BACKENDS = ("embedded", "carla")


def make_simulator(
    backend: str,
    config: Any,
    *,
    safety: SafetyDriverConfig | None = None,
    noise_variance: float = 0.0,
    perturbations: list[dict[str, Any]] | None = None,
    safety_context: dict[str, Any] | None = None,
) -> Simulator:
    """Build and wrap a simulator.

    Args:
        backend: "embedded" or "carla".
        config: the backend's config dataclass (e.g. `EmbeddedSimConfig`).
        safety: safety-driver config, or None for no safety driver (recording expert drives).
        noise_variance: Gaussian image noise σ² on the [0, 1] image; 0 for none.
        perturbations: further perturbations by name (`sim.perturbations.wrap`).
        safety_context: values copied into every intervention row.
    """
    if backend == "embedded":
        from sim.embedded.simulator import EmbeddedSimulator

        sim: Simulator = EmbeddedSimulator(config)
    elif backend == "carla":
        from sim.carla.simulator import CarlaSimulator  # lazy: the optional extra

        sim = CarlaSimulator(config)
    else:
        raise ValueError(f"unknown simulator backend {backend!r}; known: {list(BACKENDS)}")
    if safety is not None:
        sim = SafetyDriver(sim, safety, context={"noise_variance": noise_variance, **(safety_context or {})})
    if noise_variance:
        sim = GaussianNoise(sim, noise_variance)
    if perturbations:
        sim = wrap(sim, perturbations)
    return sim


def sim_meta(
    backend: str, config: Any, seed: int | None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Recording metadata for a run of `backend` with `config`."""
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    return {
        "simulator": backend,
        "track": str(cfg.get("track") or cfg.get("town") or "unknown"),
        "condition": str(cfg.get("condition", "")),
        "seed": seed,
        "control_period_s": float(cfg.get("dt_ctrl_s", 0.05)),
        "config": _jsonable(cfg),
        "extra": _jsonable(extra or {}),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
