"""The LTC sequence module: an `LTCCell` run over time, with the ncps `LTC` interface and the head protocol.

Head protocol (the `DrivingPolicy` uses it): `initial_state`, `step`, `forward_sequence`,
`hidden_activity`; the state is the (B, N) membrane potentials. ncps interface:
`forward(input, hx=None, timespans=None) -> (output, hx)` with `batch_first` and `return_sequences`,
batched (B, T, F) / (T, B, F) or unbatched (T, F) input, as `ncps.torch.LTC` (mixed memory aside).
Elapsed times are per sample: a (B, T) `timespans` scales each sample by its own Δt (ncps mixes them up
across neurons).
"""

from __future__ import annotations

import torch
from torch import nn

from policies.ltc_cell import LTCCell
from policies.wiring import FullyConnected, Wiring


class LTC(nn.Module):
    """A liquid time-constant RNN over a wiring (an NCP when given one).

    Args:
        input_size: number of input features, or a `Wiring` (then `units` is left out).
        units: a `Wiring` whose input_dim equals input_size, or a number of fully connected neurons
            (`FullyConnected(units, input_dim=input_size)`, every neuron an output, as ncps).
        return_sequences: `forward` returns all outputs (True) or only the last (False).
        batch_first: `forward` takes (B, T, F) (True) or (T, B, F) (False).
        input_mapping, output_mapping, ode_unfolds, epsilon, implicit_param_constraints: see `LTCCell`.

    Example:
        >>> from policies.ncp_wiring import driving_ncp
        >>> head = LTC(32, driving_ncp())
        >>> y, state = head.forward_sequence(torch.zeros(4, 16, 32))
        >>> tuple(y.shape), tuple(state.shape)
        ((4, 16, 1), (4, 19))
        >>> head.parameter_summary()
        '3·19 + 4·252 = 1,065 (+ 64 input-map + 2 output-map)'
    """

    continuous_time = True
    """Integrates over the elapsed time it is given (exported with an `elapsed_s` input)."""

    def __init__(
        self,
        input_size: int | Wiring,
        units: int | Wiring | None = None,
        return_sequences: bool = True,
        batch_first: bool = True,
        input_mapping: str = "affine",
        output_mapping: str = "affine",
        ode_unfolds: int = 6,
        epsilon: float = 1e-8,
        implicit_param_constraints: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(input_size, Wiring):
            if units is not None:
                raise ValueError(
                    "LTC: give either LTC(wiring) or LTC(input_size, units), not a wiring and units"
                )
            wiring = input_size
        elif isinstance(units, Wiring):
            wiring = units
        elif isinstance(units, int) and not isinstance(units, bool):
            wiring = FullyConnected(units, input_dim=int(input_size))
        else:
            raise TypeError(f"LTC: units must be a Wiring or an int, got {type(units).__name__}")
        self.rnn_cell = LTCCell(
            wiring,
            in_features=None if isinstance(input_size, Wiring) else int(input_size),
            input_mapping=input_mapping,
            output_mapping=output_mapping,
            ode_unfolds=ode_unfolds,
            epsilon=epsilon,
            implicit_param_constraints=implicit_param_constraints,
        )
        self.return_sequences = bool(return_sequences)
        self.batch_first = bool(batch_first)

    # Sizes ------------------------------------------------------------------------------------------
    @property
    def wiring(self) -> Wiring:
        return self.rnn_cell.wiring

    @property
    def input_size(self) -> int:
        return self.rnn_cell.sensory_size

    @property
    def output_size(self) -> int:
        return self.rnn_cell.motor_size

    @property
    def state_size(self) -> int:
        return self.rnn_cell.units

    @property
    def units(self) -> int:
        return self.rnn_cell.units

    @property
    def sensory_size(self) -> int:
        return self.rnn_cell.sensory_size

    @property
    def motor_size(self) -> int:
        return self.rnn_cell.motor_size

    @property
    def synapse_count(self) -> int:
        return self.rnn_cell.synapse_count

    @property
    def sensory_synapse_count(self) -> int:
        return self.rnn_cell.sensory_synapse_count

    def parameter_breakdown(self) -> dict[str, int]:
        """See `LTCCell.parameter_breakdown`."""
        return self.rnn_cell.parameter_breakdown()

    def parameter_summary(self) -> str:
        """See `LTCCell.parameter_summary`."""
        return self.rnn_cell.parameter_summary()

    def apply_weight_constraints(self) -> None:
        """See `LTCCell.apply_weight_constraints` (a no-op with softplus constraints)."""
        self.rnn_cell.apply_weight_constraints()

    @torch.no_grad()
    def calibrate_input_map(self, features: torch.Tensor) -> None:
        """Set the affine input map from data: each sensory input gets mean 0.5 and std 0.5 over `features`.

        Why: the sensory synapses are sigmoids with midpoints 0.3-0.8 and steepness 3-8. A freshly
        initialised conv head gives features whose spread over frames varies by seed (std 0.14-0.33 on
        recorded drives), and when it is small the synapses barely respond and training can sit on a
        plateau (see README, "The CLI"). Features constant over `features` keep the identity map.

        Args:
            features: (B, S) sensory features of representative frames.

        Raises:
            ValueError: the head has no affine input map, or `features` is not (B, S) with B >= 2.
        """
        cell = self.rnn_cell
        if not (hasattr(cell, "input_w") and hasattr(cell, "input_b")):
            raise ValueError("calibrate_input_map needs the affine input mapping (input_mapping='affine')")
        if features.dim() != 2 or features.shape[1] != self.sensory_size or features.shape[0] < 2:
            raise ValueError(
                f"calibrate_input_map: expected (B >= 2, {self.sensory_size}) features, "
                f"got {tuple(features.shape)}"
            )
        mean, std = features.mean(0), features.std(0)
        varies = std > 1e-6
        scale = torch.where(varies, 0.5 / std.clamp(min=1e-6), torch.ones_like(std))
        cell.input_w.copy_(scale.to(cell.input_w))
        cell.input_b.copy_(torch.where(varies, 0.5 - mean * scale, torch.zeros_like(mean)).to(cell.input_b))

    # Head protocol ----------------------------------------------------------------------------------
    def initial_state(
        self, batch: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """Zeros (B, N): the paper's zero initial state."""
        return torch.zeros(batch, self.state_size, device=device, dtype=dtype)

    def step(
        self, x: torch.Tensor, state: torch.Tensor, elapsed_s: float | torch.Tensor = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step.

        Args:
            x: (B, input_size).
            state: (B, N) potentials.
            elapsed_s: elapsed time in control periods (1.0 = one step), float, 0-d or (B,) tensor.

        Returns:
            y (B, output_size) and the next state (B, N).
        """
        return self.rnn_cell.step(x, state, elapsed_s)

    def forward_sequence(
        self, x: torch.Tensor, state: torch.Tensor | None = None, timespans: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """T steps, equal to `step` T times (training).

        Args:
            x: (B, T, input_size).
            state: (B, N), or None for zeros.
            timespans: (B, T) elapsed control periods per step, or None for ones.

        Returns:
            y (B, T, output_size) and the final state (B, N).
        """
        if state is None:
            state = self.initial_state(x.shape[0], x.device, x.dtype)
        y, vs = self.rnn_cell.forward_sequence(x, state, timespans)
        return y, vs[:, -1]

    def hidden_activity(self, state: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, N): the potentials v (column i = neuron i; motor neurons first)."""
        return state

    # ncps interface ---------------------------------------------------------------------------------
    def forward(
        self, input: torch.Tensor, hx: torch.Tensor | None = None, timespans: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run a sequence like `ncps.torch.LTC.forward`.

        Args:
            input: (B, T, F) if batch_first else (T, B, F); or unbatched (T, F).
            hx: initial state (B, N) (unbatched: (N,)), or None for zeros.
            timespans: elapsed times shaped like the input without F: (B, T) / (T, B) / (T,), optionally
                with a trailing 1 as ncps examples use; None for ones.

        Returns:
            (output, hx): output (B, T, M) / (T, B, M) / (T, M) with return_sequences, else the last
            output (B, M) / (M,); hx the final state (B, N) / (N,).
        """
        batched = input.dim() == 3
        if input.dim() not in (2, 3):
            raise ValueError(f"LTC input must be 3-D (batched) or 2-D (unbatched), got {tuple(input.shape)}")
        if timespans is not None and timespans.dim() == input.dim():
            if timespans.shape[-1] != 1:
                raise ValueError(
                    f"timespans must be shaped like the input without features, got {tuple(timespans.shape)}"
                )
            timespans = timespans.squeeze(-1)
        if not batched:
            x = input.unsqueeze(0)
            timespans = None if timespans is None else timespans.unsqueeze(0)
            if hx is not None:
                if hx.dim() != 1:
                    raise RuntimeError(
                        f"For unbatched 1-D input, hx should also be 1-D but got ({hx.dim()}-D) tensor"
                    )
                hx = hx.unsqueeze(0)
        elif self.batch_first:
            x = input
        else:
            x = input.transpose(0, 1)
            timespans = None if timespans is None else timespans.transpose(0, 1)
        if batched and hx is not None and hx.dim() != 2:
            raise RuntimeError(f"For batched 2-D input, hx should also be 2-D but got ({hx.dim()}-D) tensor")
        if timespans is not None and tuple(timespans.shape) != tuple(x.shape[:2]):
            raise ValueError(
                f"timespans {tuple(timespans.shape)} do not match the input {tuple(input.shape)}"
            )
        y, state = self.forward_sequence(x, hx, timespans)
        if not self.return_sequences:
            y = y[:, -1]
        elif batched and not self.batch_first:
            y = y.transpose(0, 1)
        if not batched:
            return y[0], state[0]
        return y, state
