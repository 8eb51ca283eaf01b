"""Parity of our CfC modules with ncps 1.0.1's after `from_ncps`: same weights, same function."""

import numpy as np
import pytest
import torch

nt = pytest.importorskip("ncps.torch")
nw = pytest.importorskip("ncps.wirings")

from policies import from_ncps  # noqa: E402
from policies.cfc import CfC  # noqa: E402
from policies.cfc_cell import CfCCell  # noqa: E402
from policies.ncps_import import wiring_from_ncps  # noqa: E402
from policies.wired_cfc import WiredCfCCell  # noqa: E402

MODES = ["default", "no_gate", "pure"]
ATOL = 1e-5


def _units(kind: str):
    """A fresh ncps units argument (ncps builds the wiring in place, so never share one)."""
    if kind == "dense":
        return 20
    if kind == "ncp":
        return nw.NCP(12, 6, 1, 6, 4, 6, 6, seed=22222)
    return nw.AutoNCP(16, 2, seed=7)


def _close(a, b):
    torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["dense", "ncp", "autoncp"])
def test_sequence_parity(mode, kind):
    ref = nt.CfC(32, _units(kind), mode=mode)
    ours = from_ncps(ref)
    assert isinstance(ours, CfC) and isinstance(ours.rnn_cell, CfCCell if kind == "dense" else WiredCfCCell)
    x = torch.randn(4, 32, 32)
    hx = torch.randn(4, ours.units)
    for h0 in (None, hx):
        y_ref, h_ref = ref(x, h0)
        y, h = ours(x, h0)
        _close(y, y_ref)
        _close(h, h_ref)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["dense", "ncp"])
def test_timespans_parity_per_sample(mode, kind):
    # ncps multiplies a (B,) elapsed time into (B, H) along the neurons, so it only runs batched timespans
    # correctly at batch 1: compare our batch of 4 with ncps sample by sample.
    ref = nt.CfC(32, _units(kind), mode=mode)
    ours = from_ncps(ref)
    x, ts, hx = torch.randn(4, 32, 32), torch.rand(4, 32) * 2 + 0.1, torch.randn(4, ours.units)
    y, h = ours(x, hx, ts)
    for i in range(4):
        y_ref, h_ref = ref(x[i : i + 1], hx[i : i + 1], ts[i : i + 1])
        _close(y[i : i + 1], y_ref)
        _close(h[i : i + 1], h_ref)


def test_ncps_batched_timespans_bug_is_not_ours():
    ref = nt.CfC(32, 4, backbone_units=8)
    ours = from_ncps(ref)
    x, ts = torch.randn(4, 3, 32), torch.rand(4, 3) * 2
    y_ncps, _ = ref(x, None, ts)  # batch == units: broadcasts, wrongly
    y, _ = ours(x, None, ts)
    alone = torch.cat([ref(x[i : i + 1], None, ts[i : i + 1])[0] for i in range(4)])
    _close(y, alone)
    assert not torch.allclose(y_ncps, alone, atol=1e-3)


@pytest.mark.parametrize("mode", MODES)
def test_cell_parity(mode):
    x, ts = torch.randn(4, 32), 0.7
    dense = nt.CfCCell(32, 10, mode, backbone_units=16, backbone_layers=2)
    ours = from_ncps(dense)
    assert type(ours) is CfCCell
    h = torch.randn(4, 10)
    _close(ours(x, h, ts)[0], dense(x, h, ts)[0])
    mask = np.random.default_rng(0).choice([-1, 0, 1], size=(42, 10))
    masked = nt.CfCCell(32, 10, mode, backbone_layers=0, sparsity_mask=mask)
    ours = from_ncps(masked)
    assert torch.equal(ours.sparsity_mask, masked.sparsity_mask.detach())
    _close(ours(x, h, ts)[0], masked(x, h, ts)[0])
    wired = nt.WiredCfCCell(32, _units("ncp"), mode)
    ours = from_ncps(wired)
    assert type(ours) is WiredCfCCell
    state = torch.randn(4, 19)
    for elapsed in (1.0, ts):
        out, new = ours(x, state, elapsed)
        out_ref, new_ref = wired(x, state, elapsed)
        _close(out, out_ref)
        _close(new, new_ref)
    per_sample = torch.tensor([1.3])
    _close(ours(x[:1], state[:1], per_sample)[1], wired(x[:1], state[:1], per_sample)[1])


def test_mixed_memory_parity():
    for units in (12, nw.NCP(8, 5, 2, 4, 3, 4, 3, seed=3)):
        ref = nt.CfC(32, units, mixed_memory=True)
        ours = from_ncps(ref)
        assert ours.mixed_memory
        x = torch.randn(4, 32, 32)
        n = ours.units
        hx = (torch.randn(4, n), torch.randn(4, n))
        for h0 in (None, hx):
            y_ref, (h_ref, c_ref) = ref(x, h0)
            y, (h, c) = ours(x, h0)
            _close(y, y_ref)
            _close(h, h_ref)
            _close(c, c_ref)


def test_layout_options_parity():
    x = torch.randn(4, 32, 32)
    for kwargs in (
        dict(proj_size=3),
        dict(return_sequences=False),
        dict(batch_first=False, proj_size=2),
        dict(batch_first=False, return_sequences=False),
    ):
        for units in (_units("dense"), _units("ncp")):
            ref = nt.CfC(32, units, **kwargs)
            ours = from_ncps(ref)
            _close(ours(x)[0], ref(x)[0])
            _close(ours(x[0])[0], ref(x[0])[0])  # unbatched


def test_backbone_variants_parity():
    x, h = torch.randn(4, 8, 32), torch.randn(4, 6)
    for activation in ("silu", "relu", "tanh", "gelu", "lecun_tanh"):
        for layers, dropout in ((0, None), (1, None), (3, 0.2)):
            ref = nt.CfC(
                32,
                6,
                activation=activation,
                backbone_units=10,
                backbone_layers=layers,
                backbone_dropout=dropout,
            ).eval()
            ours = from_ncps(ref)
            assert not ours.training
            _close(ours(x, h)[0], ref(x, h)[0])


def test_gradients_match_ncps():
    for units in (_units("ncp"), _units("dense")):
        ref = nt.CfC(32, units)
        ours = from_ncps(ref)
        x, ts = torch.randn(1, 16, 32), torch.rand(1, 16) + 0.5
        for module in (ref, ours):
            y, h = module(x, None, ts)
            (y.square().sum() + h.sum()).backward()
        ref_grads = dict(ref.named_parameters())
        for name, p in ours.named_parameters():
            torch.testing.assert_close(p.grad, ref_grads[name].grad, atol=1e-5, rtol=1e-4, msg=name)


def test_wiring_conversion_keeps_everything():
    ref = nt.CfC(32, nw.NCP(12, 6, 1, 6, 4, 6, 6, seed=5))
    w = ref.rnn_cell._wiring
    ours = wiring_from_ncps(w)
    np.testing.assert_array_equal(ours.adjacency, w.adjacency_matrix)
    np.testing.assert_array_equal(ours.sensory_adjacency, w.sensory_adjacency_matrix)
    assert ours.output_dim == 1 and ours.layers == [w.get_neurons_of_layer(i) for i in range(3)]
    assert ours.sensory_synapse_count == int(np.abs(w.sensory_adjacency_matrix).sum())
    assert from_ncps(ref).wiring == ours
    with pytest.raises(ValueError, match="not built"):
        wiring_from_ncps(nw.NCP(12, 6, 1, 6, 4, 6, 6))


def test_single_layer_wiring_gives_the_motor_neurons():
    ref = nt.CfC(32, nw.FullyConnected(5, 2))
    ours = from_ncps(ref)
    x = torch.randn(4, 6, 32)
    y_ref, h_ref = ref(x)
    y, h = ours(x)
    assert y_ref.shape[-1] == 5 and y.shape[-1] == 2  # ncps returns the whole layer despite output_dim=2
    _close(y, y_ref[..., :2])
    _close(h, h_ref)


def test_other_modules_are_refused():
    with pytest.raises(TypeError, match="from_ncps takes"):
        from_ncps(torch.nn.LSTM(3, 4))
