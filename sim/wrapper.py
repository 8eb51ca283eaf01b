"""The base of every simulator wrapper: perturbations and the safety driver wrap a `Simulator`.

A wrapper delegates everything it does not change, exposes the innermost simulator as `unwrapped`, and
records its own arguments in `params()` so reports can say exactly what was applied.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from sim.types import Command, Observation, Simulator


class SimulatorWrapper:
    """Wraps a `Simulator`; subclasses override `reset`/`step` or the observation hook.

    Args:
        sim: the simulator (or wrapper) to wrap.
    """

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    @property
    def unwrapped(self) -> Simulator:
        """The innermost simulator."""
        return getattr(self.sim, "unwrapped", self.sim)

    def params(self) -> dict[str, Any]:
        """The wrapper's arguments, for reports; subclasses extend it. A registered perturbation's
        params are its spec (`name` and arguments, `sim.perturbations.wrap` rebuilds it) plus `wrapper`."""
        from sim.perturbations import perturbation_name  # the registry sits above the base class

        name = perturbation_name(self)
        return {"wrapper": type(self).__name__, **({"name": name} if name else {})}

    def chain(self) -> list[dict[str, Any]]:
        """`params()` of every wrapper from the outermost inwards."""
        inner = self.sim.chain() if isinstance(self.sim, SimulatorWrapper) else []
        return [self.params(), *inner]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        return self.sim.reset(seed=seed, options=options)

    def step(self, command: Command) -> tuple[Observation, dict[str, Any]]:
        return self.sim.step(command)

    def close(self) -> None:
        self.sim.close()

    def __enter__(self) -> SimulatorWrapper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes the wrapper lacks: forward (e.g. `track`, `teleport`, `config`).
        if name == "sim":
            raise AttributeError(name)
        return getattr(self.sim, name)


class ObservationWrapper(SimulatorWrapper):
    """A wrapper that changes only the camera image, with a per-frame generator derived from the reset
    seed and the frame number, so every policy sees the same perturbation on the same frame."""

    salt: int = 0  # distinguishes the random streams of different wrappers

    def __init__(self, sim: Simulator) -> None:
        super().__init__(sim)
        self._seed = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        self._seed = 0 if seed is None else int(seed)
        obs, info = self.sim.reset(seed=seed, options=options)
        return self._apply(obs), info

    def step(self, command: Command) -> tuple[Observation, dict[str, Any]]:
        obs, info = self.sim.step(command)
        return self._apply(obs), info

    def frame_rng(self, frame: int) -> np.random.Generator:
        """The generator for `frame` of this episode: independent of what the policy did before."""
        return np.random.default_rng((self._seed, self.salt, int(frame)))

    def _apply(self, obs: Observation) -> Observation:
        # `replace` keeps the other fields (e.g. `input_noise` of a wrapper further in).
        return dataclasses.replace(obs, image=self.perturb(obs.image, self.frame_rng(obs.frame)))

    def perturb(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(H, W, 3) uint8 -> (H, W, 3) uint8; subclasses implement it."""
        raise NotImplementedError
