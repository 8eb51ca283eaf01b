"""The LSTM and CT-RNN baseline heads: the paper's parameter counts, the recursions, protocol, ONNX."""

import io
import warnings

import numpy as np
import pytest
import torch

from policies.baselines import CTRNNHead, LSTMHead
from policies.lstm_cell import LSTMCell


def _count(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_parameter_counts_match_the_paper():
    assert _count(LSTMHead(32, 64, 1)) == 24_897
    assert _count(CTRNNHead(32, 64, 1)) == 6_273
    assert _count(LSTMHead(32, 19, 1)) == 4 * 19 * (32 + 19 + 1) + 20


def test_lstm_cell_matches_ncps_gates():
    nt_lstm = pytest.importorskip("ncps.torch.lstm")
    ref = nt_lstm.LSTMCell(5, 4)
    ours = LSTMCell(5, 4)
    with torch.no_grad():
        ours.linear.weight.copy_(torch.cat([ref.input_map.weight, ref.recurrent_map.weight], 1))
        ours.linear.bias.copy_(ref.input_map.bias)
    x, h, c = torch.randn(3, 5), torch.randn(3, 4), torch.randn(3, 4)
    for a, b in zip(ours(x, (h, c)), ref(x, (h, c))):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_lstm_gate_formula():
    cell = LSTMCell(3, 2)
    x, h, c = torch.randn(1, 3), torch.randn(1, 2), torch.randn(1, 2)
    z = (cell.linear.weight @ torch.cat([x, h], 1).T).T + cell.linear.bias
    cand, i, f, o = z[:, :2], z[:, 2:4], z[:, 4:6], z[:, 6:]
    c_new = c * torch.sigmoid(f + 1) + torch.tanh(cand) * torch.sigmoid(i)
    h_new, c_out = cell(x, (h, c))
    torch.testing.assert_close(c_out, c_new)
    torch.testing.assert_close(h_new, torch.tanh(c_new) * torch.sigmoid(o))


def test_ctrnn_step_is_six_euler_steps_of_the_reference_ode():
    head = CTRNNHead(4, 3, 1)
    with torch.no_grad():
        head.linear.bias.uniform_(-0.5, 0.5)
    x, h0 = torch.randn(2, 4), torch.randn(2, 3)
    w = head.linear.weight.detach().numpy().astype(np.float64)
    b = head.linear.bias.detach().numpy().astype(np.float64)
    for elapsed in (1.0, 0.5):
        h = h0.numpy().astype(np.float64)
        for _ in range(6):  # dh/dt = −h/τ + tanh(W[x, h] + b), τ = 1, dt = 0.1 per unit elapsed
            h = h + 0.1 * elapsed * (-h + np.tanh(np.concatenate([x.numpy(), h], 1) @ w.T + b))
        y, state = head.step(x, h0, elapsed)
        np.testing.assert_allclose(state.detach().numpy(), h, atol=1e-6)
        torch.testing.assert_close(y, head.readout(state))
    assert torch.equal(head.step(x, h0, 0.0)[1], h0)  # no time, no change


@pytest.mark.parametrize("make", [lambda: LSTMHead(32, 19, 2), lambda: CTRNNHead(32, 16, 2)])
def test_forward_sequence_equals_stepping(make):
    head = make()
    x = torch.randn(3, 7, 32)
    state0 = torch.randn(3, head.state_size)
    ts = torch.rand(3, 7) * 2
    for timespans in (None, ts):
        y_seq, final = head.forward_sequence(x, state0, timespans)
        state, ys = state0, []
        for t in range(7):
            y, state = head.step(x[:, t], state, 1.0 if timespans is None else timespans[:, t])
            ys.append(y)
        torch.testing.assert_close(y_seq, torch.stack(ys, 1), atol=1e-6, rtol=0)
        torch.testing.assert_close(final, state, atol=1e-6, rtol=0)
    y0, s0 = head.forward_sequence(x)
    torch.testing.assert_close(y0, head.forward_sequence(x, head.initial_state(3))[0])
    assert torch.equal(head.initial_state(4), torch.zeros(4, head.state_size))


def test_ctrnn_per_sample_elapsed_time_at_batch_equal_units():
    head = CTRNNHead(32, 5, 1)
    x, ts = torch.randn(5, 4, 32), torch.rand(5, 4) * 3
    y, final = head.forward_sequence(x, None, ts)
    for i in range(5):
        torch.testing.assert_close(
            head.forward_sequence(x[i : i + 1], None, ts[i : i + 1])[1], final[i : i + 1]
        )


def test_hidden_activity_and_state_layout():
    lstm = LSTMHead(32, 19, 1)
    x = torch.randn(2, 5, 32)
    y, state = lstm.forward_sequence(x)
    h = lstm.hidden_activity(state)
    assert state.shape == (2, 38) and h.shape == (2, 19)
    torch.testing.assert_close(y[:, -1], lstm.readout(h))
    ctrnn = CTRNNHead(32, 8, 1)
    _, s = ctrnn.forward_sequence(x)
    assert torch.equal(ctrnn.hidden_activity(s), s)


def test_bad_input_is_named():
    head = LSTMHead(32, 8, 1)
    with pytest.raises(ValueError, match="input must be"):
        head.step(torch.randn(2, 31), head.initial_state(2))
    with pytest.raises(ValueError, match=r"state must be \(2, 16\)"):
        head.step(torch.randn(2, 32), torch.zeros(2, 8))
    ctrnn = CTRNNHead(32, 8, 1)
    with pytest.raises(ValueError, match="timespans"):
        ctrnn.forward_sequence(torch.randn(2, 3, 32), None, torch.ones(2, 2))
    with pytest.raises(ValueError, match="tau"):
        CTRNNHead(32, 8, 1, tau=0.0)


class _Step(torch.nn.Module):
    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, x, state):
        return self.head.step(x, state)


@pytest.mark.parametrize("make", [lambda: LSTMHead(32, 64, 1), lambda: CTRNNHead(32, 64, 1)])
def test_step_exports_to_onnx(make):
    ort = pytest.importorskip("onnxruntime")
    head = make().eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Step(head),
            (torch.randn(2, 32), torch.zeros(2, head.state_size)),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["x", "state"],
            output_names=["y", "state_out"],
            dynamic_axes={"x": {0: "batch"}, "state": {0: "batch"}},
        )
    session = ort.InferenceSession(buffer.getvalue())
    x, state = torch.randn(5, 32), torch.randn(5, head.state_size)
    y, state_out = session.run(None, {"x": x.numpy(), "state": state.numpy()})
    y_ref, state_ref = head.step(x, state)
    np.testing.assert_allclose(y, y_ref.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(state_out, state_ref.detach().numpy(), atol=1e-5)
