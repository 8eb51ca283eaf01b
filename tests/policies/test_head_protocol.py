"""Every registry policy's head implements `RecurrentHead`, in declaration and in behaviour."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from policies.driving_policy import DrivingPolicy, PolicyConfig
from policies.head import RecurrentHead
from policies.registry import build_policy, policy_names

B, T = 3, 6


def _head(name: str) -> nn.Module:
    torch.manual_seed(0)
    return build_policy(name).head.eval()


@pytest.mark.parametrize("name", policy_names())
def test_head_is_declared_a_recurrent_head(name):
    head = _head(name)
    assert isinstance(head, RecurrentHead)
    for attr in ("input_size", "output_size", "state_size"):
        value = getattr(head, attr)
        assert isinstance(value, int) and value >= 0, (attr, value)


@pytest.mark.parametrize("name", policy_names())
def test_initial_state_is_zeros_of_the_declared_width(name):
    head = _head(name)
    state = head.initial_state(B)
    assert state.shape == (B, head.state_size) and state.dtype == torch.float32
    assert not state.any()
    assert head.initial_state(2, dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("timed", [False, True])
@pytest.mark.parametrize("name", policy_names())
def test_step_t_times_equals_forward_sequence(name, timed):
    head = _head(name)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(B, T, head.input_size, generator=g) * 2.0
    timespans = 0.5 + torch.rand(B, T, generator=g) if timed else None
    # A non-zero start, so the state carried in matters too (a stateless head has nothing to carry).
    state0 = 0.3 * torch.randn(B, head.state_size, generator=g)
    with torch.no_grad():
        y_seq, final = head.forward_sequence(x, state0, timespans)
        state, ys = state0, []
        for t in range(T):
            elapsed = timespans[:, t] if timed else 1.0
            y, state = head.step(x[:, t], state, elapsed)
            assert y.shape == (B, head.output_size) and state.shape == (B, head.state_size)
            ys.append(y)
    assert y_seq.shape == (B, T, head.output_size) and final.shape == (B, head.state_size)
    torch.testing.assert_close(torch.stack(ys, 1), y_seq, atol=1e-5, rtol=0)
    torch.testing.assert_close(state, final, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", policy_names())
def test_forward_sequence_from_none_starts_at_zero(name):
    head = _head(name)
    x = torch.rand(B, T, head.input_size)
    with torch.no_grad():
        a = head.forward_sequence(x)
        b = head.forward_sequence(x, head.initial_state(B), torch.ones(B, T))
    torch.testing.assert_close(a[0], b[0], atol=0, rtol=0)
    torch.testing.assert_close(a[1], b[1], atol=0, rtol=0)


@pytest.mark.parametrize("name", policy_names())
def test_hidden_activity_has_one_column_per_neuron(name):
    head = _head(name)
    with torch.no_grad():
        _, state = head.step(torch.rand(B, head.input_size), head.initial_state(B))
        activity = head.hidden_activity(state)
    units = getattr(head, "units", 0)
    assert activity.shape == (B, units)
    assert (units == 0) == (head.state_size == 0)


def test_a_head_outside_the_protocol_is_refused_by_the_policy():
    with pytest.raises(TypeError, match="RecurrentHead"):
        DrivingPolicy(PolicyConfig(), nn.Identity(), nn.Linear(32, 1))
