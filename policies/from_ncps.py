"""Import trained modules of the reference library `ncps` (1.0.x, torch) as ours, with the same weights.

`from_ncps(module)` takes an `ncps.torch.LTC` or `LTCCell` and returns our `LTC` / `LTCCell` with the
same wiring and weights, called the same way and computing the same function (ncps's batched-timespans
bug aside: ours scales each sample by its own elapsed time). CfC modules (`CfC`, `CfCCell`,
`WiredCfCCell`) are handed to `policies.cfc_ncps.cfc_from_ncps`. ncps is imported lazily, only here.

Positivity: ours always uses softplus constraints. An ncps module with
`implicit_param_constraints=False` uses its raw (clipped) values in the forward, so those are stored as
softplus⁻¹(value): the forward is the same, up to values at or below 0, which become softplus⁻¹(1e-8).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from policies.ltc import LTC
from policies.ltc_cell import LTCCell
from policies.ltc_params import POSITIVE, inverse_softplus
from policies.ncps_interop import ncps_torch as _ncps_torch
from policies.ncps_interop import wiring_from_ncps


def _mapping(name: str) -> str:
    # ncps treats any other string as "no mapping".
    return name if name in ("affine", "linear") else "none"


def _cell_config(cell: Any) -> dict[str, Any]:
    """Constructor arguments of our LTCCell equivalent to an ncps LTCCell."""
    return {
        "input_mapping": _mapping(cell._input_mapping),
        "output_mapping": _mapping(cell._output_mapping),
        "ode_unfolds": int(cell._ode_unfolds),
        "epsilon": float(cell._epsilon),
        "implicit_param_constraints": True,
    }


def _copy_weights(ours: LTCCell, theirs: Any) -> None:
    """Copy the ncps cell's parameters into ours, converting clipped values to softplus⁻¹ form."""
    params = dict(theirs.named_parameters())
    for name in ("sparsity_mask", "sensory_sparsity_mask"):
        if not torch.equal(params[name].detach().to(getattr(ours, name)), getattr(ours, name)):
            raise ValueError(f"the ncps cell's {name} does not match its wiring's adjacency")
    clipped = []
    with torch.no_grad():
        for name, mine in ours.named_parameters():
            value = params[name].detach().to(mine)
            if name in POSITIVE and not theirs._implicit_param_constraints:
                if bool((value < 0).any()):
                    clipped.append(name)
                value = inverse_softplus(value)
            mine.copy_(value)
    if clipped:
        warnings.warn(
            f"ncps parameters {clipped} hold negative values (apply_weight_constraints was not called); "
            "they are imported clipped at 0, which changes the function",
            stacklevel=3,
        )


def from_ncps(module: nn.Module) -> nn.Module:
    """Our module with the same wiring and weights as a (trained) ncps.torch module.

    Args:
        module: an `ncps.torch.LTC`, `LTCCell`, `CfC`, `CfCCell` or `WiredCfCCell`.

    Returns:
        `policies.ltc.LTC`, `policies.ltc_cell.LTCCell`, or the CfC equivalents (`cfc_from_ncps`), on the
        same device and dtype and in the same train/eval mode.

    Raises:
        TypeError: not one of those ncps modules.
        ValueError: an LTC with mixed memory (not supported here).
    """
    nt = _ncps_torch()
    if isinstance(module, (nt.CfC, nt.CfCCell, nt.WiredCfCCell)):
        from policies.cfc_ncps import cfc_from_ncps

        return cfc_from_ncps(module)
    if isinstance(module, nt.LTC):
        if module.use_mixed:
            raise ValueError("ncps LTC with mixed_memory=True has no equivalent here")
        theirs = module.rnn_cell
        ours: nn.Module = LTC(
            wiring_from_ncps(theirs._wiring),
            return_sequences=module.return_sequences,
            batch_first=module.batch_first,
            **_cell_config(theirs),
        )
        cell = ours.rnn_cell
    elif isinstance(module, nt.LTCCell):
        theirs = module
        ours = cell = LTCCell(wiring_from_ncps(theirs._wiring), **_cell_config(theirs))
    else:
        raise TypeError(
            "from_ncps takes an ncps.torch LTC, LTCCell, CfC, CfCCell or WiredCfCCell, "
            f"got {type(module).__name__}"
        )
    reference = theirs.gleak
    ours.to(device=reference.device, dtype=reference.dtype)
    _copy_weights(cell, theirs)
    ours.train(module.training)
    return ours
