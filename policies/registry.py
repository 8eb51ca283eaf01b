"""Policies by name: each entry builds perception + head from a `PolicyConfig`.

Heads are imported inside their builders, so listing the registry is cheap.
"""

from __future__ import annotations

from collections.abc import Callable

from perception.feature_net import FeatureMapNet
from policies.driving_policy import DrivingPolicy, PolicyConfig
from policies.head import RecurrentHead
from policies.ncp_wiring import driving_ncp
from policies.wiring import FullyConnected, Random, Wiring

Parts = tuple[FeatureMapNet, RecurrentHead]
"""What a registry builder returns: the perception and the recurrent head."""

SENSORY_FEATURES = 32
"""Width of the paper's conv head output: 8 channels × 4 units."""


def _conv_head(feature_norm: str = "paper") -> FeatureMapNet:
    from perception.conv_head import ConvHead

    return ConvHead(feature_norm)


def _ltc(config: PolicyConfig, wiring: Wiring) -> Parts:
    from policies.ltc import LTC

    return _conv_head(config.sensory_norm), LTC(SENSORY_FEATURES, wiring, ode_unfolds=config.ode_unfolds)


def _ncp_ltc(config: PolicyConfig, wiring: Wiring | None) -> Parts:
    return _ltc(config, wiring or driving_ncp(config.wiring_seed, SENSORY_FEATURES))


def _fc_ltc(config: PolicyConfig, wiring: Wiring | None) -> Parts:
    # The paper's fully connected 19-neuron LTC baseline.
    return _ltc(config, wiring or FullyConnected(19, 1, seed=config.wiring_seed, input_dim=SENSORY_FEATURES))


def _random_ltc(config: PolicyConfig, wiring: Wiring | None) -> Parts:
    # The paper's randomly wired 19-neuron baseline, as sparse as the NCP (~252 of 969 synapses kept).
    default = Random(19, 1, sparsity=1 - 252 / (19 * 19 + 19 * 32), seed=config.wiring_seed, input_dim=32)
    return _ltc(config, wiring or default)


def _ncp_cfc(config: PolicyConfig, wiring: Wiring | None) -> Parts:
    from policies.cfc import CfC

    wiring = wiring or driving_ncp(config.wiring_seed, SENSORY_FEATURES)
    return _conv_head(config.sensory_norm), CfC(SENSORY_FEATURES, wiring, mode=config.cfc_mode)


def _lstm(config: PolicyConfig, wiring: Wiring | None) -> Parts:
    from policies.baselines import LSTMHead

    return _conv_head(), LSTMHead(SENSORY_FEATURES, config.units, 1)


def _ctrnn(config: PolicyConfig, wiring: Wiring | None) -> Parts:
    from policies.baselines import CTRNNHead

    return _conv_head(), CTRNNHead(SENSORY_FEATURES, config.units, 1)


def _cnn(config: PolicyConfig, wiring: Wiring | None) -> Parts:
    from perception.pilotnet import PilotNet
    from policies.stateless import StatelessHead

    return PilotNet(), StatelessHead(1)


REGISTRY: dict[str, Callable[[PolicyConfig, Wiring | None], Parts]] = {
    "ncp-ltc": _ncp_ltc,
    "ncp-cfc": _ncp_cfc,
    "lstm": _lstm,
    "ctrnn": _ctrnn,
    "cnn": _cnn,
    "fc-ltc": _fc_ltc,
    "random-ltc": _random_ltc,
}
"""Registry names -> builders. `ncp-ltc` is the default (the paper's model)."""


def policy_names() -> list[str]:
    return list(REGISTRY)


def build_policy(config: PolicyConfig | str = "ncp-ltc", wiring: Wiring | None = None) -> DrivingPolicy:
    """Build a fresh policy by registry name or config; `wiring` replaces the config's (checkpoints)."""
    if isinstance(config, str):
        config = PolicyConfig(name=config)
    builder = REGISTRY.get(config.name)
    if builder is None:
        raise ValueError(f"unknown policy {config.name!r}; known policies: {policy_names()}")
    if wiring is not None and config.name in ("lstm", "ctrnn", "cnn"):
        raise ValueError(f"policy {config.name!r} has no wiring, but one was given")
    perception, head = builder(config, wiring)
    return DrivingPolicy(config, perception, head)
