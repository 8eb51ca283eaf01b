"""Import CfC modules of the reference library `ncps` (1.0.x, torch) as ours, with the same weights.

`cfc_from_ncps(module)` takes an `ncps.torch.CfC` (dense or wired, mixed memory included), `CfCCell` or
`WiredCfCCell` and returns our `CfC`, `CfCCell` or `WiredCfCCell` computing the same function (ncps's
batched-timespans bug aside: ours scales each sample by its own elapsed time). ncps is imported lazily,
only here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from policies.cfc import CfC
from policies.cfc_cell import ACTIVATIONS, CfCCell
from policies.ncps_interop import ncps_torch as _ncps_torch
from policies.ncps_interop import wiring_from_ncps
from policies.wired_cfc import WiredCfCCell


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


def cfc_from_ncps(module: nn.Module) -> CfC | CfCCell | WiredCfCCell:
    """Our equivalent of an ncps CfC module, carrying its weights and wiring.

    Args:
        module: `ncps.torch.CfC`, `ncps.torch.CfCCell` or `ncps.torch.WiredCfCCell`.

    Returns:
        `CfC`, `CfCCell` or `WiredCfCCell` respectively.

    Raises:
        TypeError: `module` is none of those.
    """
    nt = _ncps_torch()
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
    elif isinstance(module, nt.CfCCell):
        mask = module.sparsity_mask
        ours = CfCCell(
            int(module.input_size),
            int(module.hidden_size),
            sparsity_mask=None if mask is None else mask.detach().cpu().numpy().T,  # ncps keeps it transposed
            **_dense_cell_config(module),
        )
    else:
        raise TypeError(
            f"cfc_from_ncps takes ncps.torch.CfC, CfCCell or WiredCfCCell, got {type(module).__module__}."
            f"{type(module).__name__}"
        )
    _load_ncps_state(ours, module)
    return ours
