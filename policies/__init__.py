"""Policies: the recurrent heads (LTC, CfC, LSTM, CT-RNN, stateless), their wirings, the driving policy
(perception + head), the registry, checkpoints and the ncps importer.

`import policies` stays cheap (no torch); the names below load their module on first use, so
`policies.from_ncps(module)` and `from policies import from_ncps` work as the README writes them.
"""

from __future__ import annotations

from common.lazy_exports import lazy_exports

_EXPORTS = {
    "from_ncps": "policies.ncps_import",
    "wiring_from_ncps": "policies.ncps_import",
    "RecurrentHead": "policies.head",
    "DrivingPolicy": "policies.driving_policy",
    "PolicyConfig": "policies.driving_policy",
    "build_policy": "policies.registry",
    "policy_names": "policies.registry",
    "load_policy": "policies.checkpoint",
    "save_checkpoint": "policies.checkpoint",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
