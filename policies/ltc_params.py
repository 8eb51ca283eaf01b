"""The LTC cell's parameters and their bookkeeping: init, positivity, sizes, counts, checkpoint checks.

`LTCParameters` holds what `policies.ltc_cell.LTCCell` computes with (see there for the model and the
departures from ncps): per neuron g_l (`gleak`), v_l (`vleak`), C_m (`cm`); per synapse `w`, `sigma`, `mu`,
`erev` as dense (N, N) [source, target] tensors and the `sensory_*` ones as (S, N), named as in ncps so
state dicts line up; the input and output mappings. The wiring gives the buffers: the sparsity masks, a
digest checked on `load_state_dict`, and the edge lists the solver works on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from policies.wiring import Wiring

INIT_RANGES: dict[str, tuple[float, float]] = {
    "gleak": (0.001, 1.0),
    "vleak": (-0.2, 0.2),
    "cm": (0.4, 0.6),
    "w": (0.001, 1.0),
    "sigma": (3.0, 8.0),
    "mu": (0.3, 0.8),
    "sensory_w": (0.001, 1.0),
    "sensory_sigma": (3.0, 8.0),
    "sensory_mu": (0.3, 0.8),
}
"""Uniform init ranges (ncps values, docs/conventions.md). Positive parameters: of the constrained value."""

POSITIVE = ("gleak", "cm", "w", "sensory_w")
"""Parameters kept positive (softplus or clipping)."""

MAPPINGS = ("affine", "linear", "none")

SOFTPLUS_FLOOR = 1e-8
"""Smallest value `inverse_softplus` inverts; 0 (a clipped ncps weight) maps to softplus⁻¹(1e-8) ≈ −18.4."""


def inverse_softplus(value: torch.Tensor) -> torch.Tensor:
    """softplus⁻¹, computed in float64: the raw parameter whose softplus is `value` (floored at 1e-8)."""
    x = value.detach().to(torch.float64).clamp_min(SOFTPLUS_FLOOR)
    # log(expm1(x)) = x + log(−expm1(−x)), stable for large and small x alike.
    return (x + torch.log(-torch.expm1(-x))).to(value.dtype)


class LTCParameters(nn.Module):
    """Parameters, buffers and sizes of an LTC cell over a wiring (arguments: see `LTCCell`)."""

    # Registered by name below; declared here for type checkers, to which nn.Module's __getattr__ says
    # only `Tensor | Module`. Annotations alone: nothing is set on the class.
    gleak: nn.Parameter
    vleak: nn.Parameter
    cm: nn.Parameter
    sigma: nn.Parameter
    mu: nn.Parameter
    w: nn.Parameter
    sensory_sigma: nn.Parameter
    sensory_mu: nn.Parameter
    sensory_w: nn.Parameter
    wiring_digest: torch.Tensor
    sparsity_mask: torch.Tensor
    sensory_sparsity_mask: torch.Tensor
    _src: torch.Tensor
    _flat: torch.Tensor
    _dst_onehot: torch.Tensor
    _sensory_src: torch.Tensor
    _sensory_flat: torch.Tensor
    _sensory_dst_onehot: torch.Tensor
    _src_onehot: torch.Tensor

    def __init__(
        self,
        wiring: Wiring,
        in_features: int | None = None,
        input_mapping: str = "affine",
        output_mapping: str = "affine",
        ode_unfolds: int = 6,
        epsilon: float = 1e-8,
        implicit_param_constraints: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(wiring, Wiring):
            raise TypeError(
                f"LTCCell needs a policies.wiring.Wiring, got {type(wiring).__name__} "
                "(convert an ncps wiring with policies.ncps_import.wiring_from_ncps)"
            )
        if in_features is not None and in_features != wiring.input_dim:
            raise ValueError(
                f"in_features={in_features} but the wiring has {wiring.input_dim} sensory inputs"
            )
        for name, value in (("input_mapping", input_mapping), ("output_mapping", output_mapping)):
            if value not in MAPPINGS:
                raise ValueError(f"{name} must be one of {MAPPINGS}, got {value!r}")
        if int(ode_unfolds) != ode_unfolds or ode_unfolds < 1:
            raise ValueError(f"ode_unfolds must be a positive integer, got {ode_unfolds!r}")
        if not epsilon >= 0.0:
            raise ValueError(f"epsilon must be ≥ 0, got {epsilon!r}")
        self._wiring = wiring
        self._digest = wiring.digest()
        self._input_mapping = input_mapping
        self._output_mapping = output_mapping
        self._ode_unfolds = int(ode_unfolds)
        self._epsilon = float(epsilon)
        self._implicit_param_constraints = bool(implicit_param_constraints)
        self._register_wiring_buffers()
        self._allocate_parameters()

    # Construction -----------------------------------------------------------------------------------
    def _register_wiring_buffers(self) -> None:
        n = self.units
        digest = np.frombuffer(bytes.fromhex(self._digest), dtype=np.uint8).copy()
        self.register_buffer("wiring_digest", torch.from_numpy(digest))
        for prefix, adjacency in (("", self._wiring.adjacency), ("sensory_", self._wiring.sensory_adjacency)):
            mask = np.abs(adjacency).astype(np.float32)
            self.register_buffer(f"{prefix}sparsity_mask", torch.from_numpy(mask))
            src, dst = np.nonzero(adjacency)  # row-major: edges sorted by source
            onehot = np.zeros((len(dst), n), np.float32)
            onehot[np.arange(len(dst)), dst] = 1.0
            self.register_buffer(f"_{prefix}src", torch.from_numpy(src.astype(np.int64)), persistent=False)
            self.register_buffer(f"_{prefix}flat", torch.from_numpy((src * n + dst).astype(np.int64)), False)
            self.register_buffer(f"_{prefix}dst_onehot", torch.from_numpy(onehot), persistent=False)
        src_onehot = np.zeros((len(self._src), n), np.float32)
        src_onehot[np.arange(len(self._src)), self._src.numpy()] = 1.0
        self.register_buffer("_src_onehot", torch.from_numpy(src_onehot), persistent=False)

    def _init_value(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        low, high = INIT_RANGES[name]
        value = torch.rand(*shape) * (high - low) + low
        if name in POSITIVE and self._implicit_param_constraints:
            value = inverse_softplus(value)
        return value

    def _allocate_parameters(self) -> None:
        n, s, m = self.units, self.sensory_size, self.motor_size
        shapes = {"gleak": (n,), "vleak": (n,), "cm": (n,), "sigma": (n, n), "mu": (n, n), "w": (n, n)}
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(self._init_value(name, shape)))
        self.erev = nn.Parameter(torch.from_numpy(self._wiring.adjacency.astype(np.float32)))
        for name in ("sensory_sigma", "sensory_mu", "sensory_w"):
            self.register_parameter(name, nn.Parameter(self._init_value(name, (s, n))))
        self.sensory_erev = nn.Parameter(torch.from_numpy(self._wiring.sensory_adjacency.astype(np.float32)))
        if self._input_mapping in ("affine", "linear"):
            self.input_w = nn.Parameter(torch.ones(s))
        if self._input_mapping == "affine":
            self.input_b = nn.Parameter(torch.zeros(s))
        if self._output_mapping in ("affine", "linear"):
            self.output_w = nn.Parameter(torch.ones(m))
        if self._output_mapping == "affine":
            self.output_b = nn.Parameter(torch.zeros(m))

    # Sizes (ncps names and the head protocol's) ------------------------------------------------------
    @property
    def wiring(self) -> Wiring:
        return self._wiring

    @property
    def units(self) -> int:
        """Number of neurons N."""
        return self._wiring.units

    @property
    def state_size(self) -> int:
        return self._wiring.units

    @property
    def sensory_size(self) -> int:
        return self._wiring.input_dim

    @property
    def input_size(self) -> int:
        return self._wiring.input_dim

    @property
    def motor_size(self) -> int:
        return self._wiring.output_dim

    @property
    def output_size(self) -> int:
        return self._wiring.output_dim

    @property
    def synapse_count(self) -> int:
        return self._wiring.synapse_count

    @property
    def sensory_synapse_count(self) -> int:
        return self._wiring.sensory_synapse_count

    @property
    def ode_unfolds(self) -> int:
        return self._ode_unfolds

    @property
    def epsilon(self) -> float:
        return self._epsilon

    @property
    def input_mapping(self) -> str:
        return self._input_mapping

    @property
    def output_mapping(self) -> str:
        return self._output_mapping

    @property
    def implicit_param_constraints(self) -> bool:
        return self._implicit_param_constraints

    def parameter_breakdown(self) -> dict[str, int]:
        """Counts of neurons, synapses and the trainable parameters that act.

        Keys: `neurons` N, `synapses` (internal + sensory), `neuron_params` 3·N (g_l, v_l, C_m),
        `synapse_params` 4 per synapse (w, σ, μ, E), `input_map_params`, `output_map_params`,
        `total_params` (their sum), and `allocated_params`: what the dense tensors hold (entries of
        absent synapses never act and get zero gradients).
        """
        maps = {"affine": 2, "linear": 1, "none": 0}
        synapses = self.synapse_count + self.sensory_synapse_count
        breakdown = {
            "neurons": self.units,
            "synapses": synapses,
            "neuron_params": 3 * self.units,
            "synapse_params": 4 * synapses,
            "input_map_params": maps[self._input_mapping] * self.sensory_size,
            "output_map_params": maps[self._output_mapping] * self.motor_size,
        }
        breakdown["total_params"] = sum(v for k, v in breakdown.items() if k.endswith("_params"))
        breakdown["allocated_params"] = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return breakdown

    def parameter_summary(self) -> str:
        """E.g. '3·19 + 4·252 = 1,065 (+ 64 input-map + 2 output-map)' for the driving NCP."""
        b = self.parameter_breakdown()
        core = b["neuron_params"] + b["synapse_params"]
        return (
            f"3·{b['neurons']} + 4·{b['synapses']} = {core:,} "
            f"(+ {b['input_map_params']} input-map + {b['output_map_params']} output-map)"
        )

    def apply_weight_constraints(self) -> None:
        """Clip w, sensory w, C_m, g_l at 0 (only with `implicit_param_constraints=False`, as ncps)."""
        if not self._implicit_param_constraints:
            with torch.no_grad():
                for name in POSITIVE:
                    getattr(self, name).clamp_(min=0.0)

    # Checkpoints: the wiring travels with the weights -------------------------------------------------
    # The digest is a uint8 buffer, not extra state: the ONNX tracer takes only tensors in a state dict.
    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # Checked before anything is copied, so a refused load changes nothing.
        saved_digest = state_dict.get(prefix + "wiring_digest")
        if saved_digest is not None and not torch.equal(saved_digest.cpu(), self.wiring_digest.cpu()):
            theirs = bytes(saved_digest.cpu().tolist()).hex()
            raise ValueError(f"checkpoint wiring {theirs} differs from this module's {self._digest}")
        for name in ("sparsity_mask", "sensory_sparsity_mask"):
            mine, saved = getattr(self, name), state_dict.get(prefix + name)
            if saved is not None and (saved.shape != mine.shape or not torch.equal(saved.to(mine), mine)):
                raise ValueError(
                    f"checkpoint {prefix}{name} {tuple(saved.shape)} differs from this module's wiring "
                    f"{self._digest} ({tuple(mine.shape)}): the weights belong to another wiring"
                )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
