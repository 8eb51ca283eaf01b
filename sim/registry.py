"""The one place that knows the simulator backends: name -> (config dataclass, simulator class).

Backends: `embedded` (default, numpy + OpenCV) and `carla` (needs the carla extra and a running server).
Entries name their classes as "module:attribute" and are imported on first use, so listing the CARLA
backend imports nothing of carla. Adding a backend is one module (its config dataclass and its
`Simulator`) plus one `register_backend` line here.

A record or eval config holds ONE backend's settings as a `SimSpec`: in YAML `sim: {backend: carla,
port: 2002}`, or the shorthand `sim: embedded` for the backend's defaults; an unknown backend or a key its
config lacks is a `ConfigError` naming the key. A backend config has at least `track`, `condition`,
`dt_ctrl_s` and `target_speed_mps` (records and evaluations set the first two per episode).

Wrapping order is fixed: SafetyDriver directly on the simulator, perturbations outside it, so a
teleported frame is perturbed like any other.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any

from common.strict_config import ConfigError, Dispatched
from sim.perturbations import applied_noise_variance, wrap
from sim.safety_driver import SafetyDriver, SafetyDriverConfig
from sim.types import Simulator


@dataclass(frozen=True)
class Backend:
    """A registered simulator backend.

    Attributes:
        name: the name configs use (`sim: {backend: <name>}`).
        config: the config dataclass, or "module:attribute" naming it (imported on first use).
        factory: the simulator class (or callable config -> Simulator), or "module:attribute".
    """

    name: str
    config: type | str
    factory: Any

    def config_class(self) -> type:
        config_class: type = _resolve(self.config)  # _resolve imports by name, so it returns Any
        return config_class

    def build(self, config: Any) -> Simulator:
        sim: Simulator = _resolve(self.factory)(config)
        return sim


BACKENDS: dict[str, Backend] = {}
"""Registered backends by name (`register_backend`)."""


def register_backend(name: str, config: type | str, factory: Any) -> None:
    """Register (or replace) a backend: its config dataclass and its `Simulator` factory.

    Args:
        name: the name configs use.
        config: config dataclass or "module:attribute".
        factory: `Simulator` class / callable taking the config, or "module:attribute".
    """
    BACKENDS[name] = Backend(name, config, factory)


register_backend(
    "embedded", "sim.embedded.simulator:EmbeddedSimConfig", "sim.embedded.simulator:EmbeddedSimulator"
)
register_backend("carla", "sim.carla.config:CarlaConfig", "sim.carla.simulator:CarlaSimulator")


def backend(name: str) -> Backend:
    """The registered backend `name`; ValueError naming the known ones otherwise."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown simulator backend {name!r}; known: {sorted(BACKENDS)}") from None


@dataclass(frozen=True)
class SimSpec(Dispatched):
    """One simulator backend and its settings (a config's `sim:` field).

    Attributes:
        backend: registered backend name.
        config: that backend's config dataclass; None: its defaults.
    """

    backend: str = "embedded"
    config: Any = None

    def __post_init__(self) -> None:
        config_cls = backend(self.backend).config_class()
        if self.config is None:
            object.__setattr__(self, "config", config_cls())
        elif not isinstance(self.config, config_cls):
            raise ValueError(
                f"sim {self.backend!r} takes a {config_cls.__name__}, got {type(self.config).__name__}"
            )

    @classmethod
    def registry_config(cls, tag: str, key: str) -> type:
        if tag not in BACKENDS:
            raise ConfigError(f"{key}: unknown simulator backend {tag!r}; known: {sorted(BACKENDS)}")
        return BACKENDS[tag].config_class()

    @classmethod
    def from_tagged(cls, tag: str, config: Any) -> SimSpec:
        return cls(tag, config)

    def to_config(self) -> dict[str, Any]:
        fields = {f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config)}
        return {self.tag_key: self.backend, **fields}

    def __str__(self) -> str:
        return self.backend  # "the carla simulator" in reports

    def replace(self, **changes: Any) -> SimSpec:
        """The same backend with some config fields changed (e.g. `track=`, `condition=`)."""
        return SimSpec(self.backend, dataclasses.replace(self.config, **changes))

    def build(
        self,
        *,
        safety: SafetyDriverConfig | None = None,
        perturbations: list[dict[str, Any]] | None = None,
        safety_context: dict[str, Any] | None = None,
    ) -> Simulator:
        """`make_simulator` for this backend and config."""
        return make_simulator(
            self.backend,
            self.config,
            safety=safety,
            perturbations=perturbations,
            safety_context=safety_context,
        )

    def meta(self, seed: int | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """`sim_meta` for this backend and config."""
        return sim_meta(self.backend, self.config, seed, extra)


def make_simulator(
    backend_name: str,
    config: Any,
    *,
    safety: SafetyDriverConfig | None = None,
    perturbations: list[dict[str, Any]] | None = None,
    safety_context: dict[str, Any] | None = None,
) -> Simulator:
    """Build and wrap a simulator.

    Args:
        backend_name: a registered backend ("embedded", "carla", ...).
        config: the backend's config dataclass (e.g. `EmbeddedSimConfig`).
        safety: safety-driver config, or None for no safety driver (recording expert drives).
        perturbations: perturbation specs, innermost first (`sim.perturbations.wrap`), Gaussian image
            noise included: `[{"name": "gaussian", "variance": 0.1}]`.
        safety_context: values copied into every intervention row; the applied noise variance
            (`noise_variance`, read from the wrapper chain) is added.
    """
    sim: Simulator = backend(backend_name).build(config)
    safety_driver = None
    if safety is not None:
        sim = safety_driver = SafetyDriver(sim, safety, context=safety_context)
    if perturbations:
        sim = wrap(sim, perturbations)
    if safety_driver is not None:
        safety_driver.context.setdefault("noise_variance", applied_noise_variance(sim))
    return sim


def sim_meta(
    backend_name: str, config: Any, seed: int | None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Recording metadata for a run of `backend_name` with `config`."""
    # A config is a dataclass instance or a mapping (a dataclass class would fail either way).
    is_instance = dataclasses.is_dataclass(config) and not isinstance(config, type)
    cfg = dataclasses.asdict(config) if is_instance else dict(config)
    return {
        "simulator": backend_name,
        "track": str(cfg.get("track") or cfg.get("town") or "unknown"),
        "condition": str(cfg.get("condition", "")),
        "seed": seed,
        "control_period_s": float(cfg.get("dt_ctrl_s", 0.05)),
        "config": _jsonable(cfg),
        "extra": _jsonable(extra or {}),
    }


def _resolve(ref: Any) -> Any:
    """A "module:attribute" reference, imported; anything else as it is."""
    if not isinstance(ref, str):
        return ref
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
