"""The simulators as Gymnasium environments (the `gym` extra; the one module that imports gymnasium).

Importing this module registers one environment per simulator backend (`sim.registry.BACKENDS`):
`LiquidDrive/Embedded-v0`, `LiquidDrive/Carla-v0`, … (`env_id`). Without importing it first, name the module
in the id: `gymnasium.make("sim.gym_env:LiquidDrive/Embedded-v0")`.

- observation: `{"image": (H, W, 3) uint8 RGB camera frame, "speed_mps": (1,) float32 forward speed, m/s}`;
- action: `(1,)` float32 path curvature, 1/m, left positive (`sim.types.Command`), within ± the vehicle's
  reachable curvature tan(max steer) / wheelbase;
- reward: metres of progress along the route during the step (the simulators themselves have no reward;
  wrap the environment for another);
- terminated: the car left the road or collided (only without a safety driver: with one, it takes over,
  puts the car back and counts the intervention, as in the evaluation);
- truncated: the simulator's own time or lap limit (`max_time_s`, `max_laps` of its config); the
  registration adds Gymnasium's `TimeLimit` of `MAX_EPISODE_STEPS`;
- info: the privileged truth of every backend (`sim.types.INFO_KEYS`: lateral offset, heading error,
  progress, on road, collision, the expert's curvature, pose) and the backend's extras.

Perturbations and the safety driver are the project's own wrappers around the simulator, built by
`sim.registry.make_simulator` exactly as the evaluation builds them: `gymnasium.make(id,
perturbations=[{"name": "gaussian", "variance": 0.1}], safety=SafetyDriverConfig())`. All randomness comes
from the reset seed (the simulator's and the perturbations'), so the same seed gives the same episode.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

try:
    import gymnasium
    from gymnasium import spaces
except ImportError as err:  # the gym extra is missing: say how to install it
    raise ImportError("the Gymnasium environments need gymnasium: pip install -e '.[gym]'") from err

from common.strict_config import from_dict
from sim.registry import BACKENDS, SimSpec
from sim.registry import backend as backend_entry
from sim.safety_driver import SafetyDriverConfig
from sim.types import Command, Observation, Simulator

MAX_SPEED_MPS = 100.0
"""Upper bound of the speed observation, m/s (a finite bound, as Gymnasium asks; no car here comes near)."""

MAX_EPISODE_STEPS = 2400
"""Gymnasium's step limit of the registered environments: two minutes at 20 Hz."""


def env_id(backend: str) -> str:
    """The registered id of a backend's environment, e.g. `LiquidDrive/Embedded-v0`."""
    return f"LiquidDrive/{backend.capitalize()}-v0"


class DrivingEnv(gymnasium.Env[dict[str, Any], np.ndarray]):
    """A `sim.types.Simulator` as a Gymnasium environment (see the module docstring).

    Args:
        backend: registered simulator backend ("embedded", "carla", …).
        config: the backend's config dataclass, or a mapping of its fields (e.g. `{"track": "oval"}`);
            None: its defaults.
        perturbations: perturbation specs, innermost first (`sim.perturbations.wrap`).
        safety: the safety driver's config, or None for none.
        render_mode: None or "rgb_array" (the camera frame).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        backend: str = "embedded",
        config: Any = None,
        perturbations: list[dict[str, Any]] | None = None,
        safety: SafetyDriverConfig | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if isinstance(config, dict):  # strictly, as a config file: an unknown key or a wrong type is named
            config = from_dict(backend_entry(backend).config_class(), config, "config.")
        spec = SimSpec(backend, config)
        self.sim_spec = spec
        self.sim: Simulator = spec.build(safety=safety, perturbations=list(perturbations or []))
        self.safety = safety
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": round(1.0 / float(spec.config.dt_ctrl_s))}
        height, width = _image_size(spec.config)
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, (height, width, 3), np.uint8),
                "speed_mps": spaces.Box(0.0, MAX_SPEED_MPS, (1,), np.float32),
            }
        )
        limit = max_curvature_1pm(spec.config)
        self.action_space = spaces.Box(-limit, limit, (1,), np.float32)
        self._last_image: np.ndarray | None = None
        self._progress_m = 0.0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start an episode; `options` are the simulator's reset options (`sim.types.RESET_OPTIONS`)."""
        super().reset(seed=seed)
        obs, info = self.sim.reset(seed=seed, options=options)
        self._progress_m = float(info["progress_m"])
        return self._observation(obs), info

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Drive one control period with curvature `action[0]` (1/m)."""
        curvature = float(np.asarray(action, np.float64).reshape(-1)[0])
        if not math.isfinite(curvature):
            raise ValueError(f"action: curvature must be finite, got {curvature}")
        obs, info = self.sim.step(Command(curvature))
        progress = float(info["progress_m"])
        reward, self._progress_m = progress - self._progress_m, progress
        crashed = (not bool(info["on_road"])) or bool(info["collision"])
        terminated = crashed and self.safety is None
        return self._observation(obs), reward, terminated, bool(info.get("truncated", False)), info

    def render(self) -> np.ndarray | None:
        """The last camera frame, (H, W, 3) uint8, in "rgb_array" mode; None otherwise."""
        if self.render_mode != "rgb_array" or self._last_image is None:
            return None
        image: np.ndarray = self._last_image.copy()
        return image

    def close(self) -> None:
        self.sim.close()

    def _observation(self, obs: Observation) -> dict[str, Any]:
        # A copy: a renderer may reuse its buffer, and Gymnasium forbids returning the same array twice.
        self._last_image = np.array(obs.image, dtype=np.uint8, copy=True)
        return {"image": self._last_image.copy(), "speed_mps": np.array([obs.speed_mps], np.float32)}


def max_curvature_1pm(config: Any) -> float:
    """tan(max steer) / wheelbase of the backend's vehicle, 1/m; a backend whose vehicle is known only once
    it runs (CARLA names a blueprint) gets the embedded vehicle's bound (its adapter clips to its own)."""
    from sim.embedded.vehicle import VehicleConfig

    vehicle = getattr(config, "vehicle", None)
    if not isinstance(vehicle, VehicleConfig):
        vehicle = VehicleConfig()
    return float(math.tan(vehicle.max_steer_rad) / vehicle.wheelbase_m)


def _image_size(config: Any) -> tuple[int, int]:
    """(height, width) of the backend's camera image, px (every backend config has a `camera`)."""
    return int(config.camera.height), int(config.camera.width)


def register_envs() -> list[str]:
    """Register (again) one environment per simulator backend; returns their ids."""
    ids = []
    for name in BACKENDS:
        ids.append(env_id(name))
        gymnasium.register(
            id=env_id(name),
            entry_point="sim.gym_env:DrivingEnv",
            kwargs={"backend": name},
            max_episode_steps=MAX_EPISODE_STEPS,
        )
    return ids


ENV_IDS = register_envs()
"""The ids registered on import."""
