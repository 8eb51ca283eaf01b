"""What a policy is made of (`drive info`) — neurons per layer, synapses, parameters."""

from __future__ import annotations

from typing import Protocol, cast


class _DescribedHead(Protocol):
    """The extra reporting members of the LTC heads (`LTC`, `LTCCell`), beyond `RecurrentHead`."""

    def parameter_breakdown(self) -> dict[str, int]: ...


def describe_policy(name: str = "ncp-ltc", wiring_seed: int | None = None) -> str:
    """A human-readable description of registry policy `name` (built fresh, untrained)."""
    from policies.driving_policy import PolicyConfig
    from policies.registry import build_policy

    config = (
        PolicyConfig(name=name) if wiring_seed is None else PolicyConfig(name=name, wiring_seed=wiring_seed)
    )
    policy = build_policy(config)
    counts = policy.parameter_counts()
    lines = [f"policy {name}: {type(policy.perception).__name__} + {type(policy.head).__name__}"]
    lines.append(
        f"  parameters: perception {counts['perception']:,}  head {counts['head']:,}  "
        f"total {counts['total']:,}"
    )
    wiring = policy.wiring
    if wiring is not None:
        layers = ", ".join(f"{n} {len(ids)}" for n, ids in zip(wiring.layer_names(), wiring.layers))
        pol = wiring.polarity_counts()
        lines += [
            f"  wiring: {type(wiring).__name__} (seed {config.wiring_seed}, digest {wiring.digest()})",
            f"  neurons: {wiring.units} ({layers}); sensory inputs {wiring.input_dim}",
            f"  synapses: {wiring.synapse_count + wiring.sensory_synapse_count} = "
            f"{wiring.sensory_synapse_count} sensory ({pol['sensory_excitatory']} excitatory, "
            f"{pol['sensory_inhibitory']} inhibitory) + {wiring.synapse_count} internal "
            f"({pol['excitatory']} excitatory, {pol['inhibitory']} inhibitory)",
        ]
    summary = getattr(policy.head, "parameter_summary", None)
    if summary is not None:
        # Only the LTC heads have parameter_summary, and they have parameter_breakdown too.
        b = cast(_DescribedHead, policy.head).parameter_breakdown()
        lines.append(f"  head parameters: {summary()}")
        lines.append(
            f"  (the head stores {b['allocated_params']:,} values: dense synapse tensors whose masked-out "
            f"entries never act or train; {b['total_params']:,} are live)"
        )
    lines.append(
        f"  state size: {policy.state_size}  curvature scale: {policy.curvature_scale_1pm} 1/m per unit"
    )
    return "\n".join(lines)
