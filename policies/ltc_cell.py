"""The liquid time-constant (LTC) cell: one step of the paper's Eq. 3 over a fixed wiring.

Per neuron i: leak conductance g_l, leak potential v_l, capacitance C_m. Per synapse j→i (internal and
sensory alike): w ≥ 0, steepness σ, midpoint μ, reversal potential E (initialised to the wiring's
polarity ±1, trainable). Inputs are mapped u = x·a + b, outputs are the first M potentials mapped
y = v[:M]·c + d. One step runs K = `ode_unfolds` semi-implicit Euler unfolds of length Δt/K
(`ltc_solver` has the update and its fast layout).

Same function as the reference library's `ncps.torch.LTCCell`, with these departures:
- elapsed time may be per sample, (B,), and scales each sample's own capacitance (ncps broadcasts a
  batched elapsed time over the neurons instead);
- positivity of w, sensory w, C_m and g_l is by softplus by default (`implicit_param_constraints=True`),
  and then the init ranges apply to the constrained values (ncps draws the raw parameter from the range);
  with `False`, raw values are used and `apply_weight_constraints()` clips them after each optimiser
  step, as in ncps;
- the sparsity masks are buffers derived from the wiring, not parameters, and loading a state dict made
  for another wiring raises ValueError;
- `sensory_synapse_count` counts the sensory synapses.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from policies import ltc_solver
from policies.ltc_params import LTCParameters
from policies.ltc_solver import FusedSolve, capturing, compiled, plain_path


class Synapses(NamedTuple):
    """Edge-form tensors derived from the parameters for one forward (see `ltc_solver`)."""

    sigma: torch.Tensor
    neg_sigma_mu: torch.Tensor
    scatter: torch.Tensor
    sensory_sigma: torch.Tensor
    sensory_neg_sigma_mu: torch.Tensor
    sensory_scatter: torch.Tensor
    leak_num: torch.Tensor
    leak_den: torch.Tensor
    cm: torch.Tensor


def unfold_step_captured(
    v: torch.Tensor,
    drive: torch.Tensor,
    c: torch.Tensor,
    pre_weight: torch.Tensor,
    neg_sigma_mu: torch.Tensor,
    scatter: torch.Tensor,
    unfolds: int,
    units: int,
) -> torch.Tensor:
    """`ltc_solver.unfold_step` in the form a captured (ONNX) graph runs fastest.

    Each edge's pre-activation σ_e·v[src_e] − σ_e μ_e is one matrix product v @ pre_weight + b, with
    pre_weight (N, E) holding σ_e in row src_e of column e, instead of a gather, a multiply and an add:
    7 graph operations per unfold instead of 9 (onnxruntime spends ~2.5 µs on each of these tiny ones).
    The numbers are the same: every column has one non-zero term. In PyTorch the gather is faster.

    Args:
        v: (B, N) potentials. drive, c, neg_sigma_mu, scatter, unfolds, units: see `unfold_step`.
        pre_weight: (N, E) `src_onehot.T * sigma`.

    Returns:
        (B, N) the next potentials.
    """
    for _ in range(unfolds):
        a = torch.sigmoid(torch.addmm(neg_sigma_mu, v, pre_weight))
        num, den = torch.addmm(drive, a, scatter).split(units, 1)
        v = torch.addcmul(num, c, v) / den
    return v


class LTCCell(LTCParameters):
    """An LTC cell over a wiring (an RNN cell: one time step; `policies.ltc.LTC` runs sequences).

    Args:
        wiring: the connectivity (`policies.wiring`); its input_dim is the input size.
        in_features: the input size, checked against the wiring (ncps passes it to build the wiring).
        input_mapping: `affine` (u = x·a + b), `linear` (u = x·a) or `none`.
        output_mapping: `affine`, `linear` or `none`, applied to the first `output_dim` potentials.
        ode_unfolds: K, solver unfolds per step.
        epsilon: ε added to the update's denominator.
        implicit_param_constraints: True: positivity by softplus; False: raw values, clipped by
            `apply_weight_constraints()` (call it after each optimiser step, as with ncps).

    Example:
        >>> from policies.ncp_wiring import driving_ncp
        >>> cell = LTCCell(driving_ncp())
        >>> y, v = cell(torch.zeros(2, 32), torch.zeros(2, 19))
        >>> tuple(y.shape), tuple(v.shape)
        ((2, 1), (2, 19))
    """

    # Computation --------------------------------------------------------------------------------------
    def _positive(self, p: torch.Tensor) -> torch.Tensor:
        return F.softplus(p) if self._implicit_param_constraints else p

    def synapses(self) -> Synapses:
        """The edge-form tensors of the current parameters.

        Under autograd or tracing they are computed afresh (differentiable). Without gradients they are
        cached until a parameter changes: the key is each parameter's storage address and version
        counter, which every in-place update (optimiser steps, `load_state_dict`, `.to()`) bumps; only
        writes through `.data` escape it (call `clear_inference_cache()` after those).
        """
        if plain_path():
            return self._compute_synapses(ltc_solver.synapse_tensors)
        return self._inference_tensors()[0]

    def _inference_tensors(self) -> tuple[Synapses, tuple[torch.Tensor, ...]]:
        """The cached (synapses, Δt = 1 step constants) of the current parameters (no-grad use only)."""
        # torch types _parameters as Parameter | None (register_parameter takes None); this module
        # never registers a None parameter.
        key = tuple((p.data_ptr(), p._version) for p in self._parameters.values())  # type: ignore[union-attr]
        cached = self.__dict__.get("_inference_cache")
        if cached is None or cached[0] != key:
            syn = self._compute_synapses(compiled(ltc_solver.synapse_tensors))
            cached = (key, syn, self._unit_step_constants(syn))
            self.__dict__["_inference_cache"] = cached
        return cached[1], cached[2]

    def clear_inference_cache(self) -> None:
        """Forget the cached inference tensors (needed only after writing parameters through `.data`)."""
        self.__dict__.pop("_inference_cache", None)

    def _compute_synapses(self, fn: Any) -> Synapses:
        implicit = self._implicit_param_constraints
        # Typed as synapse_tensors returns them, so the Synapses(...) unpacking below is checked.
        internal: tuple[torch.Tensor, torch.Tensor, torch.Tensor] = fn(
            self.w, self.erev, self.sigma, self.mu, self._flat, self._dst_onehot, implicit
        )
        sensory: tuple[torch.Tensor, torch.Tensor, torch.Tensor] = fn(
            self.sensory_w,
            self.sensory_erev,
            self.sensory_sigma,
            self.sensory_mu,
            self._sensory_flat,
            self._sensory_dst_onehot,
            implicit,
        )
        gleak = self._positive(self.gleak)
        return Synapses(
            *internal, *sensory, gleak * self.vleak, gleak + self._epsilon, self._positive(self.cm)
        )

    def _unit_step_constants(self, syn: Synapses) -> tuple[torch.Tensor, ...]:
        """Constants of a no-grad step with Δt = 1: input map, drive bias, C, output map."""
        ones_s = torch.ones_like(self.gleak[:1]).expand(self.sensory_size)
        zeros_s = torch.zeros_like(ones_s)
        in_w = self.input_w.detach() if self._input_mapping != "none" else ones_s
        in_b = self.input_b.detach() if self._input_mapping == "affine" else zeros_s
        ones_m = torch.ones_like(self.gleak[:1]).expand(self.motor_size)
        out_w = self.output_w.detach() if self._output_mapping != "none" else ones_m
        out_b = self.output_b.detach() if self._output_mapping == "affine" else torch.zeros_like(ones_m)
        c = self.capacitance_rate(syn.cm, 1.0, 1)
        bias = torch.cat([syn.leak_num, syn.leak_den + c])
        return in_w, in_b, bias, c, out_w, out_b

    def _map_inputs(self, x: torch.Tensor) -> torch.Tensor:
        if self._input_mapping == "affine":
            return torch.addcmul(self.input_b, x, self.input_w)
        if self._input_mapping == "linear":
            return x * self.input_w
        return x

    def _map_outputs(self, v: torch.Tensor) -> torch.Tensor:
        out = v.narrow(-1, 0, self.motor_size)
        if self._output_mapping == "affine":
            return torch.addcmul(self.output_b, out, self.output_w)
        if self._output_mapping == "linear":
            return out * self.output_w
        return out

    def _check(self, x: torch.Tensor, state: torch.Tensor) -> None:
        # torch.jit leaves is_tracing out of __all__ and unannotated (untyped_calls_exclude misses it so).
        if torch.jit.is_tracing():  # type: ignore[attr-defined,no-untyped-call]  # shapes fixed by the trace
            return
        if x.dim() != 2 or x.shape[1] != self.sensory_size:
            raise ValueError(f"LTC input must be (B, {self.sensory_size}), got {tuple(x.shape)}")
        if state.shape != (x.shape[0], self.units):
            raise ValueError(f"LTC state must be ({x.shape[0]}, {self.units}), got {tuple(state.shape)}")

    def capacitance_rate(self, cm: torch.Tensor, elapsed: float | torch.Tensor, batch: int) -> torch.Tensor:
        """C = C_m / (Δt / K): (N,) for a float or 0-d Δt, (B, N) for a per-sample (B,) or (B, 1) Δt."""
        if not isinstance(elapsed, torch.Tensor):
            if not float(elapsed) > 0.0:
                raise ValueError(f"elapsed time must be > 0, got {elapsed!r}")
            return cm / (float(elapsed) / self._ode_unfolds)
        if elapsed.dim() == 0:
            return cm / (elapsed / self._ode_unfolds)
        if tuple(elapsed.shape) not in ((batch,), (batch, 1)):
            raise ValueError(
                f"elapsed time must be a float, a 0-d or a ({batch},) tensor, got {tuple(elapsed.shape)}"
            )
        return cm / (elapsed.reshape(batch, 1) / self._ode_unfolds)

    def step(
        self, x: torch.Tensor, state: torch.Tensor, elapsed_s: float | torch.Tensor = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step.

        Args:
            x: (B, S) inputs.
            state: (B, N) potentials.
            elapsed_s: elapsed time in control periods (1.0 = one step): float, 0-d or (B,) tensor.

        Returns:
            y (B, M) and the next state (B, N).
        """
        self._check(x, state)
        if not plain_path():  # inference: cached tensors and one TorchScript call
            syn, (in_w, in_b, bias, c, out_w, out_b) = self._inference_tensors()
            if not (isinstance(elapsed_s, (int, float)) and float(elapsed_s) == 1.0):
                c = self.capacitance_rate(syn.cm, elapsed_s, x.shape[0])
                bias = torch.cat([syn.leak_num.expand_as(c), syn.leak_den + c], -1)
            mapped: tuple[torch.Tensor, torch.Tensor] = compiled(ltc_solver.step_mapped)(
                x,
                state,
                in_w,
                in_b,
                self._sensory_src,
                syn.sensory_sigma,
                syn.sensory_neg_sigma_mu,
                syn.sensory_scatter,
                bias,
                c,
                self._src,
                syn.sigma,
                syn.neg_sigma_mu,
                syn.scatter,
                out_w,
                out_b,
                self.motor_size,
                self._ode_unfolds,
            )
            return mapped
        syn = self.synapses()
        c = self.capacitance_rate(syn.cm, elapsed_s, x.shape[0])
        bias = torch.cat([syn.leak_num.expand_as(c), syn.leak_den + c], -1)
        drive = ltc_solver.sensory_drive(
            self._map_inputs(x),
            self._sensory_src,
            syn.sensory_sigma,
            syn.sensory_neg_sigma_mu,
            syn.sensory_scatter,
            bias,
        )
        if ltc_solver.capturing():  # an exported graph: see `unfold_step_captured`
            pre_weight = self._src_onehot.t() * syn.sigma
            v = unfold_step_captured(
                state, drive, c, pre_weight, syn.neg_sigma_mu, syn.scatter, self._ode_unfolds, self.units
            )
        else:
            v = ltc_solver.unfold_step(
                state,
                drive,
                c,
                self._src,
                syn.sigma,
                syn.neg_sigma_mu,
                syn.scatter,
                self._ode_unfolds,
                self.units,
            )
        return self._map_outputs(v), v

    def forward(
        self, inputs: torch.Tensor, states: torch.Tensor, elapsed_time: float | torch.Tensor = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """ncps interface: `step` (inputs (B, S), states (B, N)) -> (outputs (B, M), next states (B, N))."""
        return self.step(inputs, states, elapsed_time)

    def forward_sequence(
        self, x: torch.Tensor, state: torch.Tensor, timespans: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """T steps at once: the sensory drive of all steps in one batch, then the fused time loop.

        Args:
            x: (B, T, S) inputs.
            state: (B, N) initial potentials.
            timespans: (B, T) elapsed control periods per step, or None for ones.

        Returns:
            y (B, T, M) and the potentials after each step (B, T, N).
        """
        if x.dim() != 3 or x.shape[2] != self.sensory_size or x.shape[1] < 1:
            raise ValueError(
                f"LTC sequence input must be (B, T ≥ 1, {self.sensory_size}), got {tuple(x.shape)}"
            )
        batch, steps = x.shape[0], x.shape[1]
        self._check(x[:, 0], state)
        syn = self.synapses()
        n = self.units
        if timespans is None:
            c = self.capacitance_rate(syn.cm, 1.0, batch)  # (N,)
            bias = torch.cat([syn.leak_num, syn.leak_den + c])
            c_seq = c.view(1, 1, n).expand(steps, 1, n)
        else:
            if tuple(timespans.shape) != (batch, steps):
                raise ValueError(f"timespans must be ({batch}, {steps}), got {tuple(timespans.shape)}")
            c_seq = syn.cm / (timespans.t().unsqueeze(-1) / self._ode_unfolds)  # (T, B, N)
            bias = torch.cat([syn.leak_num.expand_as(c_seq), syn.leak_den + c_seq], -1).reshape(-1, 2 * n)
        u = self._map_inputs(x).transpose(0, 1).reshape(steps * batch, self.sensory_size)
        eager = plain_path()
        drive_fn = ltc_solver.sensory_drive if eager else compiled(ltc_solver.sensory_drive)
        drive = drive_fn(
            u, self._sensory_src, syn.sensory_sigma, syn.sensory_neg_sigma_mu, syn.sensory_scatter, bias
        ).view(steps, batch, 2 * n)
        args = (state, drive, c_seq)
        if capturing():
            vs = ltc_solver.solve_sequence(
                *args, self._src, syn.sigma, syn.neg_sigma_mu, syn.scatter, self._ode_unfolds
            )
        elif torch.is_grad_enabled():
            vs = FusedSolve.apply(  # type: ignore[no-untyped-call]  # torch leaves Function.apply untyped
                *args,
                syn.sigma,
                syn.neg_sigma_mu,
                syn.scatter,
                self._src,
                self._src_onehot,
                self._ode_unfolds,
            )
        else:
            solve = compiled(ltc_solver.solve_sequence)
            vs = solve(*args, self._src, syn.sigma, syn.neg_sigma_mu, syn.scatter, self._ode_unfolds)
        vs = vs.transpose(0, 1)
        return self._map_outputs(vs), vs

    def extra_repr(self) -> str:
        return (
            f"{self._wiring!r}, ode_unfolds={self._ode_unfolds}, input_mapping={self._input_mapping!r}, "
            f"output_mapping={self._output_mapping!r}, "
            f"implicit_param_constraints={self._implicit_param_constraints}"
        )
