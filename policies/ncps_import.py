"""Import trained modules of the reference library `ncps` (1.0.x, torch) as ours, with the same weights.

`from_ncps(module)` takes an `ncps.torch` `LTC`, `LTCCell`, `CfC` (dense or wired, mixed memory
included), `CfCCell` or `WiredCfCCell` and returns our `LTC`, `LTCCell`, `CfC`, `CfCCell` or
`WiredCfCCell` with the same wiring (`wiring_from_ncps`) and weights, called the same way and computing
the same function (ncps's batched-timespans bug aside: ours scales each sample by its own elapsed time).
ncps is imported lazily, only here; `from policies import from_ncps` loads this module on first use.

Positivity (LTC): ours always uses softplus constraints. An ncps module with
`implicit_param_constraints=False` uses its raw (clipped) values in the forward, so those are stored as
softplus⁻¹(value): the forward is the same, up to values at or below 0, which become softplus⁻¹(1e-8).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from policies.cfc import CfC
from policies.cfc_cell import ACTIVATIONS, CfCCell
from policies.ltc import LTC
from policies.ltc_cell import LTCCell
from policies.ltc_params import POSITIVE, inverse_softplus
from policies.wired_cfc import WiredCfCCell
from policies.wiring import Wiring


def ncps_torch() -> Any:
    """The `ncps.torch` module, with an install hint when the package is missing."""
    try:
        import ncps.torch
    except ImportError as err:  # pragma: no cover - ncps is a dev dependency
        raise ImportError("importing ncps modules needs the ncps package: pip install 'ncps==1.0.1'") from err
    return ncps.torch


def wiring_from_ncps(ncps_wiring: Any) -> Wiring:
    """Our `Wiring` with the same adjacency, sensory adjacency, motor count and layers as an ncps wiring.

    Raises:
        ValueError: the ncps wiring is not built yet (its input size is unknown).
    """
    if not ncps_wiring.is_built():
        raise ValueError(
            "the ncps wiring is not built: call wiring.build(input_dim) or use it in an ncps module"
        )
    return Wiring(
        adjacency=np.asarray(ncps_wiring.adjacency_matrix),
        sensory_adjacency=np.asarray(ncps_wiring.sensory_adjacency_matrix),
        output_dim=int(ncps_wiring.output_dim),
        layers=[[int(i) for i in ncps_wiring.get_neurons_of_layer(k)] for k in range(ncps_wiring.num_layers)],
        params={"imported_from": f"ncps.{type(ncps_wiring).__name__}"},
    )


# LTC -----------------------------------------------------------------------------------------------
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


# CfC -----------------------------------------------------------------------------------------------
def _dense_cell_config(cell: Any) -> dict[str, Any]:
    """Constructor arguments of our CfCCell equivalent to an ncps CfCCell."""
    config: dict[str, Any] = {"mode": cell.mode, "backbone_layers": int(cell.backbone_layers)}
    if cell.backbone is None:
        config.update(backbone_activation="lecun_tanh", backbone_units=128, backbone_dropout=0.0)
        return config
    names = {cls.__name__: name for name, cls in ACTIVATIONS.items()}
    act = type(cell.backbone[1]).__name__
    if act not in names:
        raise ValueError(f"ncps CfCCell backbone activation {act} has no equivalent here")
    dropouts = [m.p for m in cell.backbone if isinstance(m, nn.Dropout)]
    config.update(
        backbone_activation=names[act],
        backbone_units=int(cell.backbone[0].out_features),
        backbone_dropout=float(dropouts[0]) if dropouts else 0.0,
    )
    return config


def _load_ncps_state(ours: nn.Module, theirs: nn.Module) -> None:
    """Copy `theirs`' weights into `ours`: same names, except the mixed-memory LSTM (two maps -> one)."""
    source = dict(theirs.state_dict())
    for key in [k for k in source if k.endswith("input_map.weight")]:
        prefix = key[: -len("input_map.weight")]
        source[prefix + "linear.weight"] = torch.cat(
            [source.pop(key), source.pop(prefix + "recurrent_map.weight")], dim=1
        )
        source[prefix + "linear.bias"] = source.pop(prefix + "input_map.bias")
    target = ours.state_dict()
    for key, value in target.items():
        if key.endswith("wiring_digest"):
            source[key] = value  # our wiring digest: the wiring was converted from theirs
    missing = sorted(set(target) - set(source))
    unexpected = sorted(set(source) - set(target))
    if missing or unexpected:
        raise ValueError(
            f"ncps {type(theirs).__name__} does not map onto ours: missing {missing}, unexpected {unexpected}"
        )
    ours.load_state_dict(source)  # masks are compared with ours (a different wiring raises ValueError)
    ours.train(theirs.training)


def _cfc_from_ncps(module: nn.Module, nt: Any) -> CfC | CfCCell | WiredCfCCell:
    """Our `CfC`, `CfCCell` or `WiredCfCCell` for an ncps `CfC`, `CfCCell` or `WiredCfCCell` (checked by the
    caller), carrying its weights and wiring."""
    ours: CfC | CfCCell | WiredCfCCell
    if isinstance(module, nt.CfC):
        if isinstance(module.rnn_cell, nt.WiredCfCCell):
            ours = CfC(
                module.input_size,
                wiring_from_ncps(module.rnn_cell._wiring),
                proj_size=module.proj_size,
                return_sequences=module.return_sequences,
                batch_first=module.batch_first,
                mixed_memory=module.use_mixed,
                mode=module.rnn_cell._layers[0].mode,
            )
        else:
            config = _dense_cell_config(module.rnn_cell)
            ours = CfC(
                module.input_size,
                int(module.rnn_cell.hidden_size),
                proj_size=module.proj_size,
                return_sequences=module.return_sequences,
                batch_first=module.batch_first,
                mixed_memory=module.use_mixed,
                mode=config["mode"],
                activation=config["backbone_activation"],
                backbone_units=config["backbone_units"],
                backbone_layers=config["backbone_layers"],
                backbone_dropout=config["backbone_dropout"],
            )
    elif isinstance(module, nt.WiredCfCCell):
        ours = WiredCfCCell(None, wiring_from_ncps(module._wiring), module._layers[0].mode)
    else:
        theirs: Any = module  # an nt.CfCCell; ncps ships no types (isinstance on Any did not narrow)
        mask = theirs.sparsity_mask
        ours = CfCCell(
            int(theirs.input_size),
            int(theirs.hidden_size),
            sparsity_mask=None if mask is None else mask.detach().cpu().numpy().T,  # ncps keeps it transposed
            **_dense_cell_config(theirs),
        )
    _load_ncps_state(ours, module)
    return ours


def _ltc_from_ncps(module: nn.Module, nt: Any) -> LTC | LTCCell:
    """Our `LTC` or `LTCCell` for an ncps `LTC` or `LTCCell` (checked by the caller)."""
    ours: LTC | LTCCell
    if isinstance(module, nt.LTC):
        if module.use_mixed:
            raise ValueError("ncps LTC with mixed_memory=True has no equivalent here")
        theirs = module.rnn_cell
        ours = LTC(
            wiring_from_ncps(theirs._wiring),
            return_sequences=module.return_sequences,
            batch_first=module.batch_first,
            **_cell_config(theirs),
        )
        cell = ours.rnn_cell
    else:
        theirs = module
        ours = cell = LTCCell(wiring_from_ncps(theirs._wiring), **_cell_config(theirs))
    reference = theirs.gleak
    ours.to(device=reference.device, dtype=reference.dtype)
    _copy_weights(cell, theirs)
    ours.train(module.training)
    return ours


def from_ncps(module: nn.Module) -> nn.Module:
    """Our module with the same wiring and weights as a (trained) ncps.torch module.

    Args:
        module: an `ncps.torch.LTC`, `LTCCell`, `CfC`, `CfCCell` or `WiredCfCCell`.

    Returns:
        `policies.ltc.LTC`, `policies.ltc_cell.LTCCell`, `policies.cfc.CfC`, `policies.cfc_cell.CfCCell`
        or `policies.wired_cfc.WiredCfCCell` respectively, on the same device and dtype and in the same
        train/eval mode.

    Raises:
        TypeError: not one of those ncps modules.
        ValueError: an LTC with mixed memory (not supported here).
    """
    nt = ncps_torch()
    if isinstance(module, (nt.CfC, nt.CfCCell, nt.WiredCfCCell)):
        return _cfc_from_ncps(module, nt)
    if isinstance(module, (nt.LTC, nt.LTCCell)):
        return _ltc_from_ncps(module, nt)
    raise TypeError(
        "from_ncps takes an ncps.torch LTC, LTCCell, CfC, CfCCell or WiredCfCCell, "
        f"got {type(module).__module__}.{type(module).__name__}"
    )
