"""The Neural Circuit Policy wiring (sensory → inter → command → motor) and the paper's driving instance.

The graph, its serialisation and the unstructured kinds are in `policies.wiring`; this module adds the
layered wiring of Lechner et al. 2020, built by the rules of the reference library `ncps`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from policies.wiring import Wiring


class NCP(Wiring):
    """The Neural Circuit Policy wiring: sensory → inter → command (recurrent) → motor.

    Built by the rules of Lechner et al. 2020 as released in `ncps`: each sensory input synapses onto
    `sensory_fanout` distinct inter neurons, each inter neuron onto `inter_fanout` distinct command
    neurons, each motor neuron receives `motor_fanin` distinct command neurons, and
    `recurrent_command_synapses` distinct command→command pairs are added. Inter or command neurons left
    without inputs get some (the mean fan-in), and command neurons left without an output get a motor
    target, so every neuron has inputs and every sensory input reaches a motor neuron. Polarities are
    Bernoulli: +1 with `excitatory_probability`.

    With the driving defaults (32 inputs; 12, 6, 1; fan-outs 6/4/6/6) this gives 192 sensory→inter,
    48 inter→command, 6 command→command and 6 command→motor synapses: 60 internal + 192 sensory = 252,
    the released code's count (the paper says 253).
    """

    kind: ClassVar[str] = "ncp"

    def __init__(
        self,
        inter_neurons: int,
        command_neurons: int,
        motor_neurons: int,
        sensory_fanout: int,
        inter_fanout: int,
        recurrent_command_synapses: int,
        motor_fanin: int,
        seed: int = 22222,
        excitatory_probability: float = 0.5,
        *,
        input_dim: int,
    ) -> None:
        params: dict[str, Any] = dict(
            inter_neurons=inter_neurons,
            command_neurons=command_neurons,
            motor_neurons=motor_neurons,
            sensory_fanout=sensory_fanout,
            inter_fanout=inter_fanout,
            recurrent_command_synapses=recurrent_command_synapses,
            motor_fanin=motor_fanin,
            seed=seed,
            excitatory_probability=excitatory_probability,
            input_dim=input_dim,
        )
        _check_ncp_params(**params)
        rng = np.random.default_rng(seed)

        def polarity(size: int) -> np.ndarray:
            return np.where(rng.random(size) < excitatory_probability, 1, -1).astype(np.int8)

        n = inter_neurons + command_neurons + motor_neurons
        motor = np.arange(motor_neurons)
        command = np.arange(motor_neurons, motor_neurons + command_neurons)
        inter = np.arange(motor_neurons + command_neurons, n)
        adjacency = np.zeros((n, n), np.int8)
        sensory = np.zeros((input_dim, n), np.int8)

        _fan_out(rng, sensory, np.arange(input_dim), inter, sensory_fanout, polarity)
        _fan_out(rng, adjacency, inter, command, inter_fanout, polarity)
        pairs = rng.choice(command_neurons * command_neurons, recurrent_command_synapses, replace=False)
        adjacency[command[pairs // command_neurons], command[pairs % command_neurons]] = polarity(
            recurrent_command_synapses
        )
        # Motor fan-in: each motor neuron picks its command inputs.
        for dest in motor:
            srcs = rng.choice(command, motor_fanin, replace=False)
            adjacency[srcs, dest] = polarity(motor_fanin)
        # Command neurons that reach no motor neuron get one (or the mean fan-out) so no branch dead-ends.
        mean_command_fanout = int(np.clip(motor_neurons * motor_fanin // command_neurons, 1, motor_neurons))
        for src in command:
            if not np.any(adjacency[src, motor]):
                dests = rng.choice(motor, mean_command_fanout, replace=False)
                adjacency[src, dests] = polarity(mean_command_fanout)

        self._set(
            adjacency, sensory, motor_neurons, [inter.tolist(), command.tolist(), motor.tolist()], params
        )

    def layer_names(self) -> list[str]:
        return ["inter", "command", "motor"]


def _fan_out(
    rng: np.random.Generator,
    matrix: np.ndarray,
    sources: np.ndarray,
    targets: np.ndarray,
    fanout: int,
    polarity: Callable[[int], np.ndarray],
) -> None:
    """Connect each source to `fanout` distinct targets; then give unreached targets the mean fan-in."""
    for src in sources:
        dests = rng.choice(targets, fanout, replace=False)
        matrix[src, dests] = polarity(fanout)
    mean_fanin = int(np.clip(len(sources) * fanout // len(targets), 1, len(sources)))
    for dest in targets:
        if not np.any(matrix[sources, dest]):
            srcs = rng.choice(sources, mean_fanin, replace=False)
            matrix[srcs, dest] = polarity(mean_fanin)


def _check_ncp_params(
    inter_neurons: int,
    command_neurons: int,
    motor_neurons: int,
    sensory_fanout: int,
    inter_fanout: int,
    recurrent_command_synapses: int,
    motor_fanin: int,
    seed: int,
    excitatory_probability: float,
    input_dim: int,
) -> None:
    for name, value in [
        ("inter_neurons", inter_neurons),
        ("command_neurons", command_neurons),
        ("motor_neurons", motor_neurons),
        ("sensory_fanout", sensory_fanout),
        ("inter_fanout", inter_fanout),
        ("motor_fanin", motor_fanin),
        ("input_dim", input_dim),
    ]:
        if int(value) != value or value < 1:
            raise ValueError(f"NCP: {name} must be a positive integer, got {value!r}")
    if sensory_fanout > inter_neurons:
        raise ValueError(f"NCP: sensory_fanout={sensory_fanout} exceeds the {inter_neurons} inter neurons")
    if inter_fanout > command_neurons:
        raise ValueError(f"NCP: inter_fanout={inter_fanout} exceeds the {command_neurons} command neurons")
    if motor_fanin > command_neurons:
        raise ValueError(f"NCP: motor_fanin={motor_fanin} exceeds the {command_neurons} command neurons")
    if not 0 <= recurrent_command_synapses <= command_neurons**2:
        raise ValueError(
            f"NCP: recurrent_command_synapses={recurrent_command_synapses} is not in "
            f"[0, {command_neurons**2}] (distinct command→command pairs)"
        )
    if not 0.0 <= excitatory_probability <= 1.0:
        raise ValueError(f"NCP: excitatory_probability={excitatory_probability} is not in [0, 1]")


def driving_ncp(seed: int = 22222, input_dim: int = 32) -> NCP:
    """The paper's driving wiring: 12 inter, 6 command, 1 motor, fan-outs 6/4, 6 recurrent, fan-in 6."""
    return NCP(12, 6, 1, 6, 4, 6, 6, seed=seed, input_dim=input_dim)
