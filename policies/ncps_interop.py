"""What both ncps importers (LTC: `from_ncps.py`, CfC: `cfc_ncps.py`) share: the lazy ncps import and the
wiring conversion."""

from __future__ import annotations

from typing import Any

import numpy as np

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
