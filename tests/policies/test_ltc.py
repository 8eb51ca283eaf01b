"""LTC cell and head: the paper's update, per-sample time, the fused backward, checkpoints, ONNX export."""

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from policies import ltc_solver
from policies.ltc import LTC
from policies.ltc_cell import LTCCell
from policies.ltc_params import INIT_RANGES, inverse_softplus
from policies.ncp_wiring import NCP, driving_ncp
from policies.wiring import FullyConnected, Wiring


def _head(seed: int = 0, **kwargs) -> LTC:
    torch.manual_seed(seed)
    head = LTC(32, driving_ncp(), **kwargs)
    with torch.no_grad():  # trained-looking mappings, so they are exercised
        head.rnn_cell.input_w.uniform_(0.5, 1.5)
        head.rnn_cell.input_b.uniform_(-0.2, 0.2)
        head.rnn_cell.output_w.fill_(1.7)
        head.rnn_cell.output_b.fill_(-0.1)
    return head


def _reference_step(cell: LTCCell, x, v, elapsed):
    """The paper's Eq. 3 written densely, as ncps does (softplus constraints): the oracle."""
    sp = F.softplus
    u = x * cell.input_w + cell.input_b
    sens = sp(cell.sensory_w) * torch.sigmoid(cell.sensory_sigma * (u[:, :, None] - cell.sensory_mu))
    sens = sens * cell.sensory_sparsity_mask
    num_s, den_s = (sens * cell.sensory_erev).sum(1), sens.sum(1)
    elapsed = torch.as_tensor(elapsed, dtype=x.dtype).reshape(-1, 1)
    cm_t = sp(cell.cm) / (elapsed / cell.ode_unfolds)
    gleak = sp(cell.gleak)
    for _ in range(cell.ode_unfolds):
        act = sp(cell.w) * torch.sigmoid(cell.sigma * (v[:, :, None] - cell.mu)) * cell.sparsity_mask
        num = cm_t * v + gleak * cell.vleak + (act * cell.erev).sum(1) + num_s
        den = cm_t + gleak + act.sum(1) + den_s
        v = num / (den + cell.epsilon)
    return v[:, : cell.motor_size] * cell.output_w + cell.output_b, v


@pytest.mark.parametrize("grad", [False, True])
def test_step_is_the_papers_update(grad):
    head = _head()
    x, v = torch.randn(5, 32), torch.randn(5, 19) * 0.5
    elapsed = torch.tensor([1.0, 0.5, 2.0, 0.1, 3.0])
    with torch.set_grad_enabled(grad):
        y, v1 = head.step(x, v, elapsed)
        y_ref, v_ref = _reference_step(head.rnn_cell, x, v, elapsed)
    torch.testing.assert_close(v1, v_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("with_timespans", [False, True])
def test_forward_sequence_equals_stepping(grad, with_timespans):
    head = _head(1)
    x, state = torch.randn(3, 12, 32), torch.randn(3, 19) * 0.3
    timespans = torch.rand(3, 12) * 2 + 0.1 if with_timespans else None
    with torch.set_grad_enabled(grad):
        y, final = head.forward_sequence(x, state, timespans)
        v, ys = state, []
        for t in range(12):
            out, v = head.step(x[:, t], v, 1.0 if timespans is None else timespans[:, t])
            ys.append(out)
    torch.testing.assert_close(y, torch.stack(ys, 1), atol=1e-6, rtol=0)
    torch.testing.assert_close(final, v, atol=1e-6, rtol=0)


def test_per_sample_time_at_batch_equal_to_units():
    # ncps broadcasts a batched elapsed time over the neurons, silently wrong when batch == units (19).
    head = _head(2)
    x, state = torch.randn(19, 8, 32), torch.randn(19, 19) * 0.3
    timespans = torch.rand(19, 8) * 3 + 0.05
    with torch.no_grad():
        y, final = head.forward_sequence(x, state, timespans)
        y_step, _ = head.step(x[:, 0], state, timespans[:, 0])
        for b in [0, 7, 18]:
            y_b, final_b = head.forward_sequence(x[b : b + 1], state[b : b + 1], timespans[b : b + 1])
            torch.testing.assert_close(y[b : b + 1], y_b, atol=1e-6, rtol=0)
            torch.testing.assert_close(final[b : b + 1], final_b, atol=1e-6, rtol=0)
            alone, _ = head.step(x[b : b + 1, 0], state[b : b + 1], float(timespans[b, 0]))
            torch.testing.assert_close(y_step[b : b + 1], alone, atol=1e-6, rtol=0)


def test_wiring_without_internal_synapses():
    # E = 0: only the sensory synapses and the leak act; every path must cope with empty edge lists.
    torch.manual_seed(14)
    cell = LTCCell(Wiring(np.zeros((3, 3)), np.array([[1, -1, 1], [0, 1, -1]]), 1))
    x, v = torch.randn(2, 4, 2), torch.randn(2, 3)
    y, vs = cell.forward_sequence(x, v)
    y.sum().backward()
    assert cell.sensory_w.grad.abs().sum() > 0 and cell.w.grad.abs().sum() == 0
    ref_v, ref_y = v, []
    for t in range(4):
        out, ref_v = _reference_step(cell, x[:, t], ref_v, 1.0)
        ref_y.append(out)
    torch.testing.assert_close(y, torch.stack(ref_y, 1), atol=1e-6, rtol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(cell.step(x[:, 0], v)[0], ref_y[0], atol=1e-6, rtol=1e-5)


def test_elapsed_time_forms_agree():
    head = _head(3)
    x, v = torch.randn(4, 32), torch.randn(4, 19)
    with torch.no_grad():
        as_float = head.step(x, v, 0.7)[1]
        assert torch.equal(head.step(x, v, torch.tensor(0.7))[1], as_float)
        torch.testing.assert_close(head.step(x, v, torch.full((4,), 0.7))[1], as_float, atol=1e-7, rtol=0)
        torch.testing.assert_close(head.step(x, v, torch.full((4, 1), 0.7))[1], as_float, atol=1e-7, rtol=0)
        assert not torch.allclose(head.step(x, v, 1.0)[1], as_float)


def test_fused_backward_passes_gradcheck():
    # The hand-written backward of the time loop, against finite differences, in float64 on a small NCP.
    torch.manual_seed(4)
    cell = LTCCell(NCP(3, 3, 2, 2, 2, 3, 2, seed=1, input_dim=3), ode_unfolds=2).double()
    syn = cell.synapses()
    steps, batch, n = 3, 2, cell.units
    v0 = torch.randn(batch, n, dtype=torch.float64, requires_grad=True)
    drive = torch.rand(steps, batch, 2 * n, dtype=torch.float64) + 1.0
    drive.requires_grad_(True)
    c = (torch.rand(steps, batch, n, dtype=torch.float64) + 0.5).requires_grad_(True)
    sigma, nsm, scatter = (t.detach().clone().requires_grad_(True) for t in syn[:3])

    def solve(v0, drive, c, sigma, nsm, scatter):
        return ltc_solver.FusedSolve.apply(v0, drive, c, sigma, nsm, scatter, cell._src, cell._src_onehot, 2)

    assert torch.autograd.gradcheck(solve, (v0, drive, c, sigma, nsm, scatter))


def test_fused_gradients_equal_autograd_through_the_reference():
    head = _head(5)
    x, state = torch.randn(4, 10, 32), torch.randn(4, 19) * 0.3
    state.requires_grad_(True)
    timespans = torch.rand(4, 10) + 0.5
    y, _ = head.forward_sequence(x, state, timespans)
    y.square().sum().backward()
    fused = {name: p.grad.clone() for name, p in head.named_parameters()}
    fused_state = state.grad.clone()
    head.zero_grad()
    state.grad = None
    v, ys = state, []
    for t in range(10):
        out, v = _reference_step(head.rnn_cell, x[:, t], v, timespans[:, t])
        ys.append(out)
    torch.stack(ys, 1).square().sum().backward()
    for name, p in head.named_parameters():
        torch.testing.assert_close(fused[name], p.grad, atol=1e-5, rtol=1e-4, msg=name)
    torch.testing.assert_close(fused_state, state.grad, atol=1e-6, rtol=1e-4)


def test_torchscript_and_eager_agree(monkeypatch):
    head = _head(6)
    x, state = torch.randn(2, 6, 32), torch.randn(2, 19)
    with torch.no_grad():
        scripted = head.forward_sequence(x, state)[0], head.step(x[:, 0], state)[0]
        monkeypatch.setattr(ltc_solver, "USE_TORCHSCRIPT", False)
        head.rnn_cell.clear_inference_cache()
        eager = head.forward_sequence(x, state)[0], head.step(x[:, 0], state)[0]
    for a, b in zip(scripted, eager):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_inference_cache_follows_parameter_updates():
    head = _head(7)
    x, state = torch.randn(2, 32), torch.randn(2, 19)
    optimizer = torch.optim.SGD(head.parameters(), lr=0.5)
    with torch.no_grad():
        before = head.step(x, state)[0]
    head.forward_sequence(x[:, None])[0].sum().backward()
    optimizer.step()
    with torch.no_grad():
        after = head.step(x, state)[0]
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, head.step(x, state)[0].detach(), atol=1e-6, rtol=0)  # grad path
    other = _head(8)
    head.load_state_dict(other.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(head.step(x, state)[0], other.step(x, state)[0], atol=0, rtol=0)


def test_potentials_stay_within_the_reversal_and_leak_range():
    # Each unfold is a positively weighted mean of v, v_leak and the reversal potentials: no blow-up.
    head = _head(9)
    with torch.no_grad():
        head.rnn_cell.erev.mul_(3.0)
        state = torch.zeros(8, 19)
        _, vs = head.rnn_cell.forward_sequence(torch.randn(8, 200, 32) * 5, state, torch.rand(8, 200) * 20)
    cell = head.rnn_cell
    bound = max(cell.erev.abs().max(), cell.sensory_erev.abs().max(), cell.vleak.abs().max())
    assert torch.isfinite(vs).all()
    assert vs.abs().max() <= bound + 1e-5


def test_init_ranges_apply_to_the_constrained_values():
    cell = LTCCell(driving_ncp())
    for name in ("gleak", "cm", "w", "sensory_w"):
        value = F.softplus(getattr(cell, name))
        low, high = INIT_RANGES[name]
        assert low - 1e-6 <= value.min() and value.max() <= high + 1e-6, name
    assert torch.equal(cell.erev, torch.from_numpy(driving_ncp().adjacency.astype(np.float32)))
    x = torch.tensor([1e-8, 0.01, 0.5, 3.0, 40.0])
    torch.testing.assert_close(F.softplus(inverse_softplus(x)), x, rtol=1e-5, atol=0)


def test_clip_mode_uses_raw_values_and_clips():
    cell = LTCCell(driving_ncp(), implicit_param_constraints=False)
    low, high = INIT_RANGES["w"]
    assert low <= cell.w.min() and cell.w.max() <= high
    with torch.no_grad():
        cell.w[0, 0] = -1.0
        cell.cm[3] = -0.5
    cell.apply_weight_constraints()
    assert cell.w[0, 0] == 0.0 and cell.cm[3] == 0.0


def test_parameter_breakdown_of_the_driving_head():
    head = LTC(32, driving_ncp())
    b = head.parameter_breakdown()
    assert (b["neurons"], b["synapses"]) == (19, 252)
    assert (b["neuron_params"], b["synapse_params"], b["input_map_params"], b["output_map_params"]) == (
        57,
        1008,
        64,
        2,
    )
    assert b["neuron_params"] + b["synapse_params"] == 1065 and b["total_params"] == 1131
    assert b["allocated_params"] == sum(p.numel() for p in head.parameters())
    assert head.parameter_summary() == "3·19 + 4·252 = 1,065 (+ 64 input-map + 2 output-map)"
    assert (head.synapse_count, head.sensory_synapse_count) == (60, 192)


def test_construction_forms():
    wiring = driving_ncp()
    torch.manual_seed(0)
    a = LTC(wiring)
    torch.manual_seed(0)
    b = LTC(32, wiring)
    x = torch.randn(2, 3, 32)
    torch.testing.assert_close(a(x)[0], b(x)[0], atol=0, rtol=0)
    dense = LTC(20, 7)
    assert dense.wiring.synapse_count == 49 and dense.output_size == 7 and dense.input_size == 20
    assert (a.state_size, a.output_size, a.input_size) == (19, 1, 32)
    assert torch.equal(a.initial_state(3), torch.zeros(3, 19))
    state = torch.randn(2, 19)
    assert a.hidden_activity(state) is state


def test_ncps_style_forward_layouts():
    head = _head(10)
    x, hx = torch.randn(2, 5, 32), torch.randn(2, 19)
    ts = torch.rand(2, 5) + 0.5
    with torch.no_grad():
        y, final = head.forward_sequence(x, hx, ts)
        out, h = head(x, hx, ts[..., None])
        torch.testing.assert_close(out, y, atol=0, rtol=0)
        head.batch_first = False
        out, h = head(x.transpose(0, 1), hx, ts.t())
        torch.testing.assert_close(out, y.transpose(0, 1), atol=0, rtol=0)
        head.batch_first, head.return_sequences = True, False
        out, h = head(x, hx, ts)
        torch.testing.assert_close(out, y[:, -1], atol=0, rtol=0)
        torch.testing.assert_close(h, final, atol=0, rtol=0)
        head.return_sequences = True
        out, h = head(x[1], hx[1], ts[1])  # unbatched
        torch.testing.assert_close(out, y[1], atol=1e-6, rtol=0)
        assert h.shape == (19,)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda h: h.step(torch.zeros(2, 31), torch.zeros(2, 19)), r"input must be \(B, 32\)"),
        (lambda h: h.step(torch.zeros(2, 32), torch.zeros(3, 19)), r"state must be \(2, 19\)"),
        (lambda h: h.step(torch.zeros(2, 32), torch.zeros(2, 19), torch.ones(3)), "elapsed time"),
        (lambda h: h.step(torch.zeros(2, 32), torch.zeros(2, 19), 0.0), "elapsed time must be > 0"),
        (lambda h: h.forward_sequence(torch.zeros(2, 4, 32), None, torch.ones(2, 5)), r"timespans must be"),
        (lambda h: h.forward_sequence(torch.zeros(2, 0, 32)), "T ≥ 1"),
        (lambda h: h(torch.zeros(2, 4, 32), torch.zeros(19)), "hx should also be 2-D"),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises((ValueError, RuntimeError), match=message):
        call(_head())


def test_bad_construction_is_a_clear_error():
    with pytest.raises(ValueError, match="in_features=31"):
        LTCCell(driving_ncp(), in_features=31)
    with pytest.raises(ValueError, match="input_mapping"):
        LTCCell(driving_ncp(), input_mapping="cubic")
    with pytest.raises(ValueError, match="ode_unfolds"):
        LTCCell(driving_ncp(), ode_unfolds=0)
    with pytest.raises(TypeError, match="wiring_from_ncps"):
        LTCCell(object())
    with pytest.raises(ValueError, match="sensory inputs"):
        LTC(31, driving_ncp())


def test_checkpoint_round_trip_and_foreign_wiring():
    head = _head(11)
    buffer = io.BytesIO()
    torch.save(head.state_dict(), buffer)
    buffer.seek(0)
    state_dict = torch.load(buffer)
    assert "rnn_cell.sparsity_mask" in state_dict and "rnn_cell._src" not in state_dict
    same = LTC(32, driving_ncp())
    same.load_state_dict(state_dict)
    x = torch.randn(2, 4, 32)
    torch.testing.assert_close(same(x)[0], head(x)[0], atol=0, rtol=0)
    other = LTC(32, driving_ncp(seed=1))
    with pytest.raises(ValueError, match="differs from this module's"):
        other.load_state_dict(state_dict)
    no_digest = {k: v for k, v in state_dict.items() if not k.endswith("wiring_digest")}
    with pytest.raises(ValueError, match="another wiring"):
        other.load_state_dict(no_digest, strict=False)


def test_linear_and_no_mappings():
    torch.manual_seed(12)
    wiring = FullyConnected(5, 2, input_dim=3)
    for mapping in ("linear", "none"):
        cell = LTCCell(wiring, input_mapping=mapping, output_mapping=mapping)
        names = {n for n, _ in cell.named_parameters()}
        assert ("input_w" in names) == (mapping == "linear") and "input_b" not in names
        x, v = torch.randn(2, 3), torch.randn(2, 5)
        with torch.no_grad():
            fast = cell(x, v)
        slow = cell(x, v)
        torch.testing.assert_close(fast[0], slow[0].detach(), atol=1e-6, rtol=0)
        assert cell.parameter_breakdown()["input_map_params"] == (3 if mapping == "linear" else 0)


@pytest.mark.filterwarnings(
    "ignore::DeprecationWarning"
)  # the TorchScript exporter (dynamo=False) is asked for
def test_step_exports_to_onnx_and_matches():
    ort = pytest.importorskip("onnxruntime")
    head = _head(13).eval()

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = head

        def forward(self, x, state):
            return self.head.step(x, state)

    x, state = torch.randn(1, 32), torch.randn(1, 19)
    buffer = io.BytesIO()
    torch.onnx.export(
        Step(),
        (x, state),
        buffer,
        dynamo=False,
        opset_version=17,
        input_names=["x", "state"],
        output_names=["y", "next_state"],
        dynamic_axes={"x": {0: "b"}, "state": {0: "b"}},
    )
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    x3, s3 = torch.randn(3, 32), torch.randn(3, 19)
    y, nxt = session.run(None, {"x": x3.numpy(), "state": s3.numpy()})
    with torch.no_grad():
        y_ref, nxt_ref = head.step(x3, s3)
    np.testing.assert_allclose(y, y_ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(nxt, nxt_ref.numpy(), atol=1e-5)
