"""Wirings: reproducible from the seed, exact round trips, every neuron fed, every input reaching a motor."""

import json
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.ncp_wiring import NCP, driving_ncp
from policies.wiring import FullyConnected, Random, Wiring


def _reaches_motor(wiring: Wiring, sensory_input: int) -> bool:
    """Breadth-first search from one sensory input along the synapses; True if a motor neuron is hit."""
    frontier = deque(np.flatnonzero(wiring.sensory_adjacency[sensory_input]).tolist())
    seen = set(frontier)
    while frontier:
        neuron = frontier.popleft()
        if neuron < wiring.output_dim:
            return True
        for nxt in np.flatnonzero(wiring.adjacency[neuron]).tolist():
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return False


def _assert_well_formed(wiring: Wiring) -> None:
    fed = np.any(wiring.adjacency != 0, axis=0) | np.any(wiring.sensory_adjacency != 0, axis=0)
    assert fed.all(), f"neurons without inputs: {np.flatnonzero(~fed)}"
    unreached = [s for s in range(wiring.input_dim) if not _reaches_motor(wiring, s)]
    assert not unreached, f"sensory inputs reaching no motor neuron: {unreached}"
    assert wiring.synapse_count == np.count_nonzero(wiring.adjacency)
    assert wiring.sensory_synapse_count == np.count_nonzero(wiring.sensory_adjacency)
    counts = wiring.polarity_counts()
    assert counts["excitatory"] + counts["inhibitory"] == wiring.synapse_count
    assert counts["sensory_excitatory"] + counts["sensory_inhibitory"] == wiring.sensory_synapse_count


def test_driving_wiring_has_the_released_counts():
    w = driving_ncp()
    inter, command, motor = (np.array(layer) for layer in w.layers)
    assert (w.units, w.input_dim, w.output_dim) == (19, 32, 1)
    assert (len(inter), len(command), len(motor)) == (12, 6, 1)
    assert motor.tolist() == [0]  # motor neurons first, as ncps
    assert w.sensory_synapse_count == 192
    assert np.count_nonzero(w.adjacency[np.ix_(inter, command)]) == 48
    assert np.count_nonzero(w.adjacency[np.ix_(command, command)]) == 6
    assert np.count_nonzero(w.adjacency[np.ix_(command, motor)]) == 6
    assert w.synapse_count == 60
    assert w.synapse_count + w.sensory_synapse_count == 252
    # Nothing outside the NCP's layer-to-layer pattern.
    allowed = np.zeros_like(w.adjacency, bool)
    allowed[np.ix_(inter, command)] = allowed[np.ix_(command, command)] = allowed[np.ix_(command, motor)] = (
        True
    )
    assert not np.any(w.adjacency[~allowed])
    assert not np.any(w.sensory_adjacency[:, np.r_[command, motor]])
    _assert_well_formed(w)


def test_same_seed_same_wiring_and_other_seed_another():
    assert driving_ncp(7) == driving_ncp(7)
    assert driving_ncp(7).digest() == driving_ncp(7).digest()
    assert driving_ncp(7) != driving_ncp(8)
    assert FullyConnected(5, 2, seed=3, input_dim=4) == FullyConnected(5, 2, seed=3, input_dim=4)
    assert Random(9, 1, seed=3, input_dim=4) == Random(9, 1, seed=3, input_dim=4)
    assert Random(9, 1, seed=3, input_dim=4) != Random(9, 1, seed=4, input_dim=4)


@pytest.mark.parametrize(
    "wiring",
    [
        driving_ncp(5),
        FullyConnected(6, 2, self_connections=False, input_dim=3),
        Random(10, 2, sparsity=0.7, seed=1, input_dim=5),
        Wiring(np.array([[0, 1], [-1, 0]]), np.array([[1, 0]]), 1),
    ],
    ids=["ncp", "fully_connected", "random", "custom"],
)
def test_round_trip_is_exact_through_json(wiring):
    back = Wiring.from_dict(json.loads(json.dumps(wiring.to_dict())))
    assert type(back) is type(wiring)
    assert back == wiring
    assert back.digest() == wiring.digest()
    assert back.layers == wiring.layers and back.params == wiring.params
    assert back.adjacency.dtype == np.int8 and not back.adjacency.flags.writeable


def test_digest_depends_on_connectivity_only():
    w = driving_ncp()
    copy = Wiring(w.adjacency, w.sensory_adjacency, w.output_dim, w.layers, params={"imported_from": "x"})
    assert copy == w and copy.digest() == w.digest()  # how it was made does not matter
    flipped = w.adjacency.copy()
    src, dst = np.argwhere(flipped)[0]
    flipped[src, dst] *= -1
    assert Wiring(flipped, w.sensory_adjacency, w.output_dim, w.layers).digest() != w.digest()


@settings(max_examples=40, deadline=None)
@given(
    inter=st.integers(1, 12),
    command=st.integers(1, 8),
    motor=st.integers(1, 4),
    inputs=st.integers(1, 12),
    data=st.data(),
)
def test_any_valid_ncp_is_well_formed(inter, command, motor, inputs, data):
    wiring = NCP(
        inter,
        command,
        motor,
        sensory_fanout=data.draw(st.integers(1, inter)),
        inter_fanout=data.draw(st.integers(1, command)),
        recurrent_command_synapses=data.draw(st.integers(0, command * command)),
        motor_fanin=data.draw(st.integers(1, command)),
        seed=data.draw(st.integers(0, 2**31 - 1)),
        input_dim=inputs,
    )
    _assert_well_formed(wiring)
    assert wiring.units == inter + command + motor


@settings(max_examples=25, deadline=None)
@given(
    units=st.integers(1, 12),
    inputs=st.integers(1, 6),
    sparsity=st.floats(0.0, 0.95),
    seed=st.integers(0, 999),
)
def test_random_wiring_feeds_every_neuron(units, inputs, sparsity, seed):
    wiring = Random(units, 1, sparsity=sparsity, seed=seed, input_dim=inputs)
    fed = np.any(wiring.adjacency != 0, axis=0) | np.any(wiring.sensory_adjacency != 0, axis=0)
    assert fed.all()
    assert wiring.synapse_count == np.count_nonzero(wiring.adjacency)


def test_fully_connected_is_full():
    w = FullyConnected(4, 2, self_connections=False, input_dim=3)
    assert w.synapse_count == 12 and w.sensory_synapse_count == 12
    assert not np.any(np.diag(w.adjacency))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sensory_fanout=13), "sensory_fanout=13 exceeds the 12 inter"),
        (dict(inter_fanout=7), "inter_fanout=7 exceeds the 6 command"),
        (dict(motor_fanin=7), "motor_fanin=7 exceeds the 6 command"),
        (dict(recurrent_command_synapses=37), "recurrent_command_synapses=37"),
        (dict(inter_neurons=0), "inter_neurons must be a positive integer"),
        (dict(input_dim=0), "input_dim must be a positive integer"),
        (dict(excitatory_probability=1.5), "excitatory_probability"),
    ],
)
def test_impossible_ncp_is_an_error_naming_the_parameter(kwargs, message):
    args = dict(
        inter_neurons=12,
        command_neurons=6,
        motor_neurons=1,
        sensory_fanout=6,
        inter_fanout=4,
        recurrent_command_synapses=6,
        motor_fanin=6,
        input_dim=32,
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        NCP(**args)


@pytest.mark.parametrize(
    "adjacency, sensory, output_dim, layers, message",
    [
        (np.zeros((2, 3)), np.zeros((1, 3)), 1, None, "square"),
        (np.full((2, 2), 2), np.zeros((1, 2)), 1, None, "entries must be in"),
        (np.zeros((2, 2)), np.zeros((1, 3)), 1, None, "sensory_adjacency must be"),
        (np.zeros((2, 2)), np.zeros((1, 2)), 3, None, "output_dim must be in"),
        (np.zeros((2, 2)), np.zeros((1, 2)), 1, [[0], [0]], "layers must partition"),
    ],
)
def test_malformed_wiring_is_an_error(adjacency, sensory, output_dim, layers, message):
    with pytest.raises(ValueError, match=message):
        Wiring(adjacency, sensory, output_dim, layers)


def test_from_dict_rejects_unknown_kind_and_version():
    data = driving_ncp().to_dict()
    with pytest.raises(ValueError, match="unknown wiring kind"):
        Wiring.from_dict({**data, "kind": "spiral"})
    with pytest.raises(ValueError, match="format_version"):
        Wiring.from_dict({**data, "format_version": 99})
    with pytest.raises(ValueError, match="lacks keys"):
        Wiring.from_dict({k: v for k, v in data.items() if k != "layers"})
