"""Importing ncps LTC modules: same weights, same wiring, same outputs (and gradients) as ncps, to 1e-5."""

import warnings

import numpy as np
import pytest
import torch

ncps_torch = pytest.importorskip("ncps.torch")
ncps_wirings = pytest.importorskip("ncps.wirings")

from policies import from_ncps  # noqa: E402
from policies.ltc import LTC  # noqa: E402
from policies.ltc_cell import LTCCell  # noqa: E402
from policies.ncps_import import wiring_from_ncps  # noqa: E402

TOL = dict(atol=1e-5, rtol=1e-5)


def _ncps_wiring(kind: str):
    if kind == "ncp":
        return ncps_wirings.NCP(12, 6, 1, 6, 4, 6, 6)
    if kind == "autoncp":
        return ncps_wirings.AutoNCP(16, 3)
    return ncps_wirings.FullyConnected(8, 2)


def _trained_like(module: torch.nn.Module, implicit: bool) -> None:
    """Move the parameters away from their init, as training would (clipped at 0 in clip mode)."""
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
        if not implicit:
            module.rnn_cell.w[0, :] = -0.3  # a few weights that clipping takes to exactly 0
            module.rnn_cell.apply_weight_constraints()


def _ncps_ltc(kind: str, implicit: bool, seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    module = ncps_torch.LTC(32, _ncps_wiring(kind), implicit_param_constraints=implicit, **kwargs)
    _trained_like(module, implicit)
    return module


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize("kind", ["ncp", "autoncp", "fully_connected"])
def test_sequence_parity_with_hx(kind, implicit):
    theirs = _ncps_ltc(kind, implicit)
    ours = from_ncps(theirs)
    assert isinstance(ours, LTC)
    assert ours.wiring == wiring_from_ncps(theirs.rnn_cell._wiring)
    x = torch.randn(4, 32, 32)
    hx = torch.randn(4, theirs.state_size) * 0.5
    y_ref, h_ref = theirs(x, hx)
    y, h = ours(x, hx)
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(h, h_ref, **TOL)
    with torch.no_grad():  # the TorchScript inference path too
        y, h = ours(x)
        y_ref, h_ref = theirs(x)
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(h, h_ref, **TOL)


@pytest.mark.parametrize("implicit", [True, False])
def test_timespans_parity(implicit):
    # ncps mixes batched timespans up across neurons, so it is run one sample at a time (B = 1 is right
    # there): equal timespans across the batch in one case, different per sample in the other.
    theirs = _ncps_ltc("ncp", implicit, seed=1)
    ours = from_ncps(theirs)
    x, hx = torch.randn(4, 32, 32), torch.randn(4, 19) * 0.5
    shared = (torch.rand(1, 32) * 2 + 0.1).expand(4, 32)
    per_sample = torch.rand(4, 32) * 2 + 0.1
    for timespans in (shared, per_sample):
        y, h = ours(x, hx, timespans)
        for b in range(4):
            y_ref, h_ref = theirs(x[b : b + 1], hx[b : b + 1], timespans[b : b + 1])
            torch.testing.assert_close(y[b : b + 1], y_ref, **TOL)
            torch.testing.assert_close(h[b : b + 1], h_ref, **TOL)


def test_layouts_parity():
    for kwargs in (dict(batch_first=False), dict(return_sequences=False)):
        theirs = _ncps_ltc("ncp", True, seed=2, **kwargs)
        ours = from_ncps(theirs)
        x = torch.randn(5, 3, 32)
        for args in ((x,), (x[:, 0],)):  # batched, and unbatched (T, F)
            y_ref, h_ref = theirs(*args)
            y, h = ours(*args)
            torch.testing.assert_close(y, y_ref, **TOL)
            torch.testing.assert_close(h, h_ref, **TOL)


@pytest.mark.parametrize("implicit", [True, False])
def test_cell_parity(implicit):
    torch.manual_seed(3)
    wiring = ncps_wirings.NCP(12, 6, 1, 6, 4, 6, 6)
    theirs = ncps_torch.LTCCell(wiring, in_features=32, implicit_param_constraints=implicit)
    ours = from_ncps(theirs)
    assert isinstance(ours, LTCCell) and ours.implicit_param_constraints
    x, h = torch.randn(4, 32), torch.randn(4, 19)
    for elapsed in (1.0, 0.35, 2.5):
        y_ref, h_ref = theirs(x, h, elapsed)
        y, h_ours = ours(x, h, elapsed)
        torch.testing.assert_close(y, y_ref, **TOL)
        torch.testing.assert_close(h_ours, h_ref, **TOL)
        with torch.no_grad():
            torch.testing.assert_close(ours(x, h, elapsed)[0], y_ref, **TOL)


def test_gradients_match_ncps():
    # Same raw parameters (softplus in both), so the gradients are comparable name by name.
    theirs = _ncps_ltc("ncp", True, seed=4)
    ours = from_ncps(theirs)
    x, target = torch.randn(4, 16, 32), torch.randn(4, 16, 1)
    for module in (theirs, ours):
        torch.nn.functional.mse_loss(module(x)[0], target).backward()
    theirs_grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, theirs_grads[name].grad, atol=1e-6, rtol=1e-4, msg=name)


def test_float64_and_mode_are_kept():
    theirs = _ncps_ltc("fully_connected", True, seed=5).double().eval()
    ours = from_ncps(theirs)
    assert ours.rnn_cell.w.dtype == torch.float64 and not ours.training
    x = torch.randn(2, 6, 32, dtype=torch.float64)
    torch.testing.assert_close(ours(x)[0], theirs(x)[0], atol=1e-12, rtol=1e-12)


def test_negative_raw_weights_in_clip_mode_warn():
    torch.manual_seed(6)
    theirs = ncps_torch.LTC(32, ncps_wirings.NCP(12, 6, 1, 6, 4, 6, 6), implicit_param_constraints=False)
    with torch.no_grad():
        theirs.rnn_cell.gleak[0] = -0.5
    with pytest.warns(UserWarning, match="gleak"):
        from_ncps(theirs)
    theirs.rnn_cell.apply_weight_constraints()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_ncps(theirs)


def test_cfc_modules_are_dispatched():
    from policies.cfc import CfC

    torch.manual_seed(7)
    theirs = ncps_torch.CfC(32, ncps_wirings.NCP(12, 6, 1, 6, 4, 6, 6))
    ours = from_ncps(theirs)
    assert isinstance(ours, CfC)
    x = torch.randn(2, 5, 32)
    torch.testing.assert_close(ours(x)[0], theirs(x)[0], **TOL)


def test_unsupported_modules_are_errors():
    with pytest.raises(TypeError, match="Linear"):
        from_ncps(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="mixed_memory"):
        from_ncps(ncps_torch.LTC(8, 4, mixed_memory=True))
    unbuilt = ncps_wirings.NCP(12, 6, 1, 6, 4, 6, 6)
    with pytest.raises(ValueError, match="not built"):
        wiring_from_ncps(unbuilt)


def test_imported_wiring_keeps_layers_and_polarity():
    theirs = _ncps_ltc("ncp", True, seed=8)
    ncps_wiring = theirs.rnn_cell._wiring
    wiring = from_ncps(theirs).wiring
    assert wiring.layers == [list(ncps_wiring.get_neurons_of_layer(i)) for i in range(3)]
    assert np.array_equal(wiring.adjacency, ncps_wiring.adjacency_matrix)
    assert np.array_equal(wiring.sensory_adjacency, ncps_wiring.sensory_adjacency_matrix)
    assert wiring.synapse_count == ncps_wiring.synapse_count


def test_readme_spelling_policies_from_ncps_works_and_import_policies_stays_cheap():
    import subprocess
    import sys

    import policies

    theirs = _ncps_ltc("ncp", True, seed=3)
    ours = policies.from_ncps(theirs)  # as the README writes it
    x = torch.randn(2, 4, 32)
    torch.testing.assert_close(ours(x)[0], theirs(x)[0], **TOL)
    assert policies.from_ncps is from_ncps
    with pytest.raises(AttributeError, match="no_such_name"):
        policies.no_such_name  # noqa: B018
    # The names load lazily: `import policies` alone imports neither torch nor ncps.
    code = "import sys, policies; print('torch' in sys.modules, 'ncps' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
