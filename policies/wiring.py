"""Wirings: which neuron talks to which, and with what sign.

A wiring is two signed adjacency matrices, `adjacency` (N×N, [source, target]) among the N neurons and
`sensory_adjacency` (S×N, [input, target]) from the S sensory inputs, with entries in {−1, 0, +1}
(−1 inhibitory, +1 excitatory). Neuron ids follow the reference library `ncps`: the `output_dim`
motor neurons come first (the policy's outputs are neurons 0..M−1), then command, then inter neurons.
`layers` lists the neuron ids of each layer from the input side (inter, command, motor), which the wired
CfC uses to run its sub-cells in order.

Unlike `ncps`: the sensory synapse count is the sensory one, the whole wiring (adjacency included)
round-trips through `to_dict()`/`from_dict()`, recurrent command synapses are distinct pairs (so the
count asked for is the count built), and the input size is fixed at construction.

This module holds the graph itself and the unstructured kinds (FullyConnected, Random); the paper's
layered NCP wiring is in `policies.ncp_wiring`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

import numpy as np

WIRING_FORMAT_VERSION = 1


class Wiring:
    """A fixed, signed connectivity of N neurons fed by S sensory inputs.

    Args:
        adjacency: (N, N) ints in {−1, 0, +1}, [source, target].
        sensory_adjacency: (S, N) ints in {−1, 0, +1}, [input, target].
        output_dim: number of motor neurons M; the outputs are neurons 0..M−1.
        layers: neuron ids per layer, input side first; defaults to one layer of all neurons.
        params: the constructor arguments, kept for display and `to_dict()`.
    """

    kind: ClassVar[str] = "custom"

    def __init__(
        self,
        adjacency: np.ndarray,
        sensory_adjacency: np.ndarray,
        output_dim: int,
        layers: list[list[int]] | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        self._set(adjacency, sensory_adjacency, output_dim, layers, params or {})

    def _set(
        self,
        adjacency: np.ndarray,
        sensory_adjacency: np.ndarray,
        output_dim: int,
        layers: list[list[int]] | None,
        params: dict[str, Any],
    ) -> None:
        adjacency = _signed_matrix(adjacency, "adjacency")
        sensory_adjacency = _signed_matrix(sensory_adjacency, "sensory_adjacency")
        n = adjacency.shape[0]
        if adjacency.shape != (n, n):
            raise ValueError(f"adjacency must be square (N, N), got {adjacency.shape}")
        if sensory_adjacency.shape[1] != n:
            raise ValueError(
                f"sensory_adjacency must be (S, {n}) to match adjacency, got {sensory_adjacency.shape}"
            )
        if not 1 <= int(output_dim) <= n:
            raise ValueError(f"output_dim must be in [1, {n}], got {output_dim}")
        layers = [list(range(n))] if layers is None else [[int(i) for i in layer] for layer in layers]
        if sorted(i for layer in layers for i in layer) != list(range(n)):
            raise ValueError(f"layers must partition the neuron ids 0..{n - 1}, got {layers}")
        adjacency.setflags(write=False)
        sensory_adjacency.setflags(write=False)
        self.adjacency = adjacency
        self.sensory_adjacency = sensory_adjacency
        self.output_dim = int(output_dim)
        self.layers = layers
        self.params = dict(params)

    # Sizes and counts -------------------------------------------------------------------------------
    @property
    def units(self) -> int:
        """Number of neurons N (the recurrent state size)."""
        units: int = self.adjacency.shape[0]
        return units

    @property
    def input_dim(self) -> int:
        """Number of sensory inputs S."""
        inputs: int = self.sensory_adjacency.shape[0]
        return inputs

    @property
    def synapse_count(self) -> int:
        """Synapses among neurons (non-zeros of `adjacency`)."""
        return int(np.count_nonzero(self.adjacency))

    @property
    def sensory_synapse_count(self) -> int:
        """Synapses from sensory inputs (non-zeros of `sensory_adjacency`)."""
        return int(np.count_nonzero(self.sensory_adjacency))

    def polarity_counts(self) -> dict[str, int]:
        """Excitatory / inhibitory counts of the internal and the sensory synapses."""
        return {
            "excitatory": int((self.adjacency > 0).sum()),
            "inhibitory": int((self.adjacency < 0).sum()),
            "sensory_excitatory": int((self.sensory_adjacency > 0).sum()),
            "sensory_inhibitory": int((self.sensory_adjacency < 0).sum()),
        }

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def neurons_of_layer(self, layer_id: int) -> list[int]:
        """Neuron ids of layer `layer_id` (0 = the input side)."""
        return list(self.layers[layer_id])

    def layer_names(self) -> list[str]:
        """Names of the layers, input side first."""
        return [f"layer{i}" for i in range(self.num_layers)]

    def neuron_type(self, neuron_id: int) -> str:
        """The name of the layer holding `neuron_id`."""
        for name, layer in zip(self.layer_names(), self.layers):
            if neuron_id in layer:
                return name
        raise ValueError(f"neuron {neuron_id} is not in this wiring of {self.units} neurons")

    # Serialisation ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description that `from_dict` turns back into an identical wiring."""
        return {
            "format_version": WIRING_FORMAT_VERSION,
            "kind": self.kind,
            "params": dict(self.params),
            "output_dim": self.output_dim,
            "layers": [list(layer) for layer in self.layers],
            "adjacency": self.adjacency.tolist(),
            "sensory_adjacency": self.sensory_adjacency.tolist(),
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Wiring:
        """Rebuild a wiring saved by `to_dict`, adjacency included (no re-sampling from the seed)."""
        expected = {"format_version", "kind", "params", "output_dim", "layers", "adjacency"}
        missing = expected - set(data)
        if missing or "sensory_adjacency" not in data:
            raise ValueError(f"wiring dict lacks keys {sorted(missing | {'sensory_adjacency'} - set(data))}")
        if data["format_version"] != WIRING_FORMAT_VERSION:
            raise ValueError(f"wiring format_version {data['format_version']} is not {WIRING_FORMAT_VERSION}")
        kinds = _kinds()
        cls = kinds.get(data["kind"])
        if cls is None:
            raise ValueError(f"unknown wiring kind {data['kind']!r}; known: {sorted(kinds)}")
        wiring = cls.__new__(cls)
        Wiring._set(
            wiring,
            np.asarray(data["adjacency"]),
            np.asarray(data["sensory_adjacency"]).reshape(-1, len(data["adjacency"])),
            data["output_dim"],
            data["layers"],
            data["params"],
        )
        return wiring

    def digest(self) -> str:
        """A short hash of the connectivity (sizes, signs, layers): equal wirings have equal digests."""
        # Like __eq__, ignore how the wiring was made (kind, params): an imported copy hashes the same.
        payload = json.dumps(
            {k: v for k, v in self.to_dict().items() if k not in ("params", "kind")}, sort_keys=True
        ).encode()
        return hashlib.sha256(payload).hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Wiring)
            and self.output_dim == other.output_dim
            and self.layers == other.layers
            and np.array_equal(self.adjacency, other.adjacency)
            and np.array_equal(self.sensory_adjacency, other.sensory_adjacency)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-looking container: compare, don't hash

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(units={self.units}, inputs={self.input_dim}, outputs={self.output_dim}, "
            f"synapses={self.synapse_count}, sensory_synapses={self.sensory_synapse_count})"
        )


class FullyConnected(Wiring):
    """Every input to every neuron and every neuron to every neuron (self-connections optional).

    Polarity is Bernoulli(+1 with `excitatory_probability`, default 2/3 as in `ncps`).
    """

    kind: ClassVar[str] = "fully_connected"

    def __init__(
        self,
        units: int,
        output_dim: int | None = None,
        self_connections: bool = True,
        seed: int = 1111,
        excitatory_probability: float = 2.0 / 3.0,
        *,
        input_dim: int,
    ) -> None:
        if units < 1 or input_dim < 1:
            raise ValueError(f"FullyConnected: units and input_dim must be ≥ 1, got {units}, {input_dim}")
        output_dim = units if output_dim is None else output_dim
        rng = np.random.default_rng(seed)
        adjacency = np.where(rng.random((units, units)) < excitatory_probability, 1, -1).astype(np.int8)
        if not self_connections:
            np.fill_diagonal(adjacency, 0)
        sensory = np.where(rng.random((input_dim, units)) < excitatory_probability, 1, -1).astype(np.int8)
        params = dict(
            units=units,
            output_dim=output_dim,
            self_connections=self_connections,
            seed=seed,
            excitatory_probability=excitatory_probability,
            input_dim=input_dim,
        )
        self._set(adjacency, sensory, output_dim, None, params)


class Random(Wiring):
    """Like FullyConnected, then a fraction `sparsity` of the internal and of the sensory synapses removed
    (chosen uniformly; every neuron keeps at least one input)."""

    kind: ClassVar[str] = "random"

    def __init__(
        self,
        units: int,
        output_dim: int | None = None,
        sparsity: float = 0.5,
        seed: int = 1111,
        excitatory_probability: float = 2.0 / 3.0,
        *,
        input_dim: int,
    ) -> None:
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"Random: sparsity must be in [0, 1), got {sparsity}")
        if units < 1 or input_dim < 1:
            raise ValueError(f"Random: units and input_dim must be ≥ 1, got {units}, {input_dim}")
        output_dim = units if output_dim is None else output_dim
        rng = np.random.default_rng(seed)

        def sparse_signed(shape: tuple[int, int]) -> np.ndarray:
            signs = np.where(rng.random(shape) < excitatory_probability, 1, -1).astype(np.int8)
            keep = np.ones(shape[0] * shape[1], bool)
            keep[rng.choice(keep.size, int(round(sparsity * keep.size)), replace=False)] = False
            return signs * keep.reshape(shape)

        adjacency = sparse_signed((units, units))
        sensory = sparse_signed((input_dim, units))
        for dest in range(units):  # no neuron without inputs
            if not adjacency[:, dest].any() and not sensory[:, dest].any():
                sensory[rng.integers(input_dim), dest] = 1
        params = dict(
            units=units,
            output_dim=output_dim,
            sparsity=sparsity,
            seed=seed,
            excitatory_probability=excitatory_probability,
            input_dim=input_dim,
        )
        self._set(adjacency, sensory, output_dim, None, params)


def _signed_matrix(matrix: np.ndarray, name: str) -> np.ndarray:
    array = np.array(matrix)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {array.shape}")
    if not np.all(np.isin(array, (-1, 0, 1))):
        raise ValueError(f"{name} entries must be in {{-1, 0, +1}}")
    return array.astype(np.int8)


def _kinds() -> dict[str, type[Wiring]]:
    """Every wiring class by its `kind`, for `Wiring.from_dict`."""
    # NCP lives in policies.ncp_wiring, which imports this module, so it is imported here at first use.
    from policies.ncp_wiring import NCP

    return {cls.kind: cls for cls in (Wiring, NCP, FullyConnected, Random)}
