"""CfC cells, the wired CfC over an NCP and the CfC head: closed forms, protocol, masks, time, export."""

import io
import warnings

import numpy as np
import pytest
import torch

from policies.cfc import CfC
from policies.cfc_cell import CfCCell, LeCun
from policies.ncp_wiring import NCP, driving_ncp
from policies.wired_cfc import WiredCfCCell, layer_masks
from policies.wiring import FullyConnected

MODES = ["default", "no_gate", "pure"]


def _ncp(seed: int = 22222):
    return driving_ncp(seed, input_dim=32)


@pytest.mark.parametrize("mode", MODES)
def test_cell_step_is_the_closed_form(mode):
    cell = CfCCell(5, 3, mode, backbone_layers=0)
    x, h = torch.randn(2, 5), torch.randn(2, 3)
    ts = torch.tensor([0.5, 2.0])
    out, state = cell(x, h, ts)
    z = torch.cat([x, h], 1)
    ff1 = cell.ff1(z)
    t = ts[:, None]
    if mode == "pure":
        expected = -cell.A * torch.exp(-t * (cell.w_tau.abs() + ff1.abs())) * ff1 + cell.A
    else:
        g = torch.sigmoid(cell.time_a(z) * t + cell.time_b(z))
        f1, f2 = torch.tanh(ff1), torch.tanh(cell.ff2(z))
        expected = f1 + g * f2 if mode == "no_gate" else f1 * (1 - g) + g * f2
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    assert out is state


def test_backbone_uses_lecun_tanh_and_feeds_the_heads():
    cell = CfCCell(4, 3, "default", backbone_units=7, backbone_layers=2)
    x, h = torch.randn(2, 4), torch.randn(2, 3)
    act = lambda v: 1.7159 * torch.tanh(0.666 * v)  # noqa: E731
    b0, b1 = cell.backbone[0], cell.backbone[2]
    feat = act(b1(act(b0(torch.cat([x, h], 1)))))
    g = torch.sigmoid(cell.time_a(feat) + cell.time_b(feat))
    expected = torch.tanh(cell.ff1(feat)) * (1 - g) + g * torch.tanh(cell.ff2(feat))
    torch.testing.assert_close(cell(x, h)[0], expected, atol=1e-6, rtol=0)
    assert isinstance(cell.backbone[1], LeCun)


def test_wired_masks_follow_ncps_construction():
    w = _ncp()
    masks = layer_masks(w)
    inter, command, motor = w.layers
    assert masks[0].shape == (32 + 12, 12) and masks[1].shape == (12 + 6, 6) and masks[2].shape == (6 + 1, 1)
    np.testing.assert_array_equal(masks[0][:32], np.abs(w.sensory_adjacency[:, inter]))
    np.testing.assert_array_equal(masks[1][:12], np.abs(w.adjacency[np.ix_(inter, command)]))
    np.testing.assert_array_equal(masks[2][:6], np.abs(w.adjacency[np.ix_(command, motor)]))
    for m, n in zip(masks, (12, 6, 1)):
        np.testing.assert_array_equal(m[-n:], np.ones((n, n)))  # dense recurrence inside a layer, as ncps
    cell = WiredCfCCell(32, w)
    buffers = dict(cell.named_buffers())
    params = dict(cell.named_parameters())
    for l, m in enumerate(masks):
        assert f"layer_{l}.sparsity_mask" in buffers and f"layer_{l}.sparsity_mask" not in params
        np.testing.assert_array_equal(buffers[f"layer_{l}.sparsity_mask"].numpy(), m.T)


def test_masked_out_weights_have_no_effect_and_no_gradient():
    cell = WiredCfCCell(32, _ncp())
    x, h = torch.randn(3, 32), torch.randn(3, 19)
    before = cell(x, h)[1]
    layer0 = cell.layer_0
    off = layer0.sparsity_mask == 0
    assert off.any()
    with torch.no_grad():
        layer0.ff1.weight[off] += 5.0
        layer0.ff2.weight[off] -= 5.0
    torch.testing.assert_close(cell(x, h)[1], before, atol=0, rtol=0)
    y, _ = cell.forward_sequence(torch.randn(3, 4, 32), h)
    y.sum().backward()
    assert torch.all(layer0.ff1.weight.grad[off] == 0) and torch.all(layer0.ff2.weight.grad[off] == 0)
    assert layer0.ff1.weight.grad[~off].abs().sum() > 0


def test_driving_ncp_cfc_sizes_and_parameter_count():
    head = CfC(32, _ncp())
    assert (head.units, head.state_size, head.output_size, head.input_size) == (19, 19, 1, 32)
    # 4 heads per layer over [previous layer, own state]: 4·(12·44 + 12) + 4·(6·18 + 6) + 4·(1·7 + 1)
    assert sum(p.numel() for p in head.parameters() if p.requires_grad) == 2160 + 456 + 32
    pure = CfC(32, _ncp(), mode="pure")  # one head + w_tau + A per neuron
    assert sum(p.numel() for p in pure.parameters()) == (540 + 114 + 8) + 2 * 19
    assert head.wiring == _ncp()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("wired", [True, False])
@pytest.mark.parametrize("steps", [1, 2, 5])
def test_forward_sequence_equals_stepping(mode, wired, steps):
    head = CfC(32, _ncp() if wired else 6, mode=mode, proj_size=None if wired else 2, backbone_units=None)
    x = torch.randn(3, steps, 32)
    state0 = torch.randn(3, head.state_size)
    ts = torch.rand(3, steps) * 2
    for timespans in (None, ts):
        y_seq, final = head.forward_sequence(x, state0, timespans)
        state, ys = state0, []
        for t in range(steps):
            y, state = head.step(x[:, t], state, 1.0 if timespans is None else timespans[:, t])
            ys.append(y)
        torch.testing.assert_close(y_seq, torch.stack(ys, 1), atol=1e-6, rtol=0)
        torch.testing.assert_close(final, state, atol=1e-6, rtol=0)


def test_pipelined_gradients_equal_stepwise_gradients():
    head = CfC(32, _ncp())
    x, state0, ts = torch.randn(2, 6, 32), torch.randn(2, 19), torch.rand(2, 6) + 0.5
    y, final = head.forward_sequence(x, state0, ts)
    (y.square().sum() + final.sum()).backward()
    piped = {n: p.grad.clone() for n, p in head.named_parameters()}
    head.zero_grad()
    state, loss = state0, 0.0
    for t in range(6):
        y_t, state = head.step(x[:, t], state, ts[:, t])
        loss = loss + y_t.square().sum()
    (loss + state.sum()).backward()
    for name, p in head.named_parameters():
        torch.testing.assert_close(piped[name], p.grad, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("mode", MODES)
def test_per_sample_timespans_at_batch_equal_units(mode):
    # ncps broadcasts a (B,) elapsed time over neurons: silently wrong exactly when B == units.
    wired = CfC(32, _ncp(), mode=mode)
    dense = CfC(32, 7, mode=mode, backbone_units=8)
    for head, batch in ((wired, 19), (dense, 7)):
        x = torch.randn(batch, 4, 32)
        ts = torch.rand(batch, 4) * 3
        y, final = head.forward_sequence(x, None, ts)
        for i in range(batch):
            y_i, final_i = head.forward_sequence(x[i : i + 1], None, ts[i : i + 1])
            torch.testing.assert_close(y[i : i + 1], y_i, atol=1e-6, rtol=0)
            torch.testing.assert_close(final[i : i + 1], final_i, atol=1e-6, rtol=0)
        step_y, _ = head.step(x[:, 0], head.initial_state(batch), ts[:, 0])
        torch.testing.assert_close(step_y, y[:, 0], atol=1e-6, rtol=0)


def test_elapsed_time_matters_and_scalar_equals_constant_vector():
    head = CfC(32, _ncp())
    x, s = torch.randn(4, 32), torch.randn(4, 19)
    y1, s1 = head.step(x, s, 1.0)
    torch.testing.assert_close(head.step(x, s, torch.ones(4))[1], s1, atol=1e-7, rtol=0)
    torch.testing.assert_close(head.step(x, s, torch.tensor(1.0))[1], s1, atol=1e-7, rtol=0)
    assert not torch.allclose(head.step(x, s, 0.1)[1], s1, atol=1e-3)


def test_hidden_activity_is_in_neuron_id_order():
    w = _ncp()
    head = CfC(32, w)
    y, state = head.step(torch.randn(2, 32), head.initial_state(2))
    act = head.hidden_activity(state)
    order = [i for layer in w.layers for i in layer]  # the state is in layer order
    for position, neuron in enumerate(order):
        torch.testing.assert_close(act[:, neuron], state[:, position])
    torch.testing.assert_close(act[:, :1], y)  # neuron 0 is the motor neuron, the output
    dense = CfC(32, 5)
    s = torch.randn(2, 5)
    assert torch.equal(dense.hidden_activity(s), s)


def test_loading_weights_of_another_wiring_is_refused():
    a, b = CfC(32, _ncp(1)), CfC(32, _ncp(2))
    x = torch.randn(2, 3, 32)
    ref = b(x)[0]
    with pytest.raises(ValueError, match="checkpoint wiring .* differs from this module's"):
        b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b(x)[0], ref, atol=0, rtol=0)  # nothing was copied
    no_digest = {k: v for k, v in a.state_dict().items() if not k.endswith("wiring_digest")}
    with pytest.raises(ValueError, match="sparsity mask"):
        b.load_state_dict(no_digest)
    c = CfC(32, _ncp(1))
    c.load_state_dict(a.state_dict())
    torch.testing.assert_close(c(x)[0], a(x)[0], atol=0, rtol=0)


def test_ncps_style_forward_layouts():
    head = CfC(32, _ncp(), return_sequences=True)
    x = torch.randn(3, 5, 32)
    y, h = head(x)
    y_ref, h_ref = head.forward_sequence(x)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(h, h_ref)
    tf = CfC(32, _ncp(), batch_first=False)
    tf.load_state_dict(head.state_dict())
    y_tf, h_tf = tf(x.transpose(0, 1), None, torch.ones(5, 3))
    torch.testing.assert_close(y_tf.transpose(0, 1), y_ref, atol=1e-6, rtol=0)
    last = CfC(32, _ncp(), return_sequences=False)
    last.load_state_dict(head.state_dict())
    torch.testing.assert_close(last(x)[0], y_ref[:, -1])
    y1, h1 = head(x[0], h_ref[0] * 0)  # unbatched
    torch.testing.assert_close(y1, y_ref[0], atol=1e-6, rtol=0)
    assert h1.shape == (19,)


def test_mixed_memory_state_packs_h_and_c():
    head = CfC(32, 6, mixed_memory=True, backbone_units=8)
    assert head.state_size == 12
    x = torch.randn(2, 4, 32)
    y, final = head.forward_sequence(x)
    y_ncps, (h, c) = head(x)
    torch.testing.assert_close(final, torch.cat([h, c], 1))
    torch.testing.assert_close(head.hidden_activity(final), h)
    with pytest.raises(RuntimeError, match="tuple"):
        head(x, torch.zeros(2, 6))


def test_fully_connected_wiring_is_one_layer():
    w = FullyConnected(5, 2, input_dim=32)
    head = CfC(32, w)
    assert head.output_size == 2 and len(head.rnn_cell.layer_sizes) == 1
    y, final = head.forward_sequence(torch.randn(2, 3, 32))
    torch.testing.assert_close(y[:, -1], final[:, :2])  # a single layer outputs its first neurons


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="mode"):
        CfC(32, 8, mode="closed")
    with pytest.raises(ValueError, match="input_size=16"):
        CfC(16, _ncp())
    with pytest.raises(ValueError, match="backbone_units"):
        CfC(32, _ncp(), backbone_units=64)
    with pytest.raises(ValueError, match="activation"):
        CfC(32, 8, activation="swish")
    head = CfC(32, _ncp())
    with pytest.raises(ValueError, match="state must be"):
        head.step(torch.randn(2, 32), torch.zeros(2, 18))
    with pytest.raises(ValueError, match="input must be"):
        head.forward_sequence(torch.randn(2, 3, 31))
    with pytest.raises(ValueError, match="timespans"):
        head.forward_sequence(torch.randn(2, 3, 32), None, torch.ones(2, 4))
    with pytest.raises(ValueError, match="elapsed time"):
        head.step(torch.randn(2, 32), head.initial_state(2), torch.ones(3))
    with pytest.raises(ValueError, match="sparsity_mask"):
        CfCCell(4, 3, backbone_layers=1, sparsity_mask=np.ones((7, 3)))


class _Step(torch.nn.Module):
    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, x, state):
        return self.head.step(x, state)


@pytest.mark.parametrize("mode", MODES)
def test_wired_step_exports_to_onnx(mode):
    ort = pytest.importorskip("onnxruntime")
    head = CfC(32, NCP(6, 4, 2, 3, 2, 3, 2, input_dim=32), mode=mode).eval()
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
