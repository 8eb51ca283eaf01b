"""The paper's recurrent baselines as heads (Lechner et al. 2020): LSTM and CT-RNN, each + a linear readout.

Both follow the head protocol (`initial_state`, `step`, `forward_sequence`, `hidden_activity`); `step` is
pure and exports to ONNX. Parameter counts match the paper with 32 inputs and 64 units:

- `LSTMHead`: 4·64·(32 + 64 + 1) = 24,832 (one bias vector, see `LSTMCell`) + 65 readout = 24,897.
- `CTRNNHead`: 64·(32 + 64) + 64 = 6,208 + 65 readout = 6,273, which is the reference CT-RNN of Hasani
  et al.'s LTC experiments (`ctrnn_model.py`, global feedback, `fix_tau=True`): dh/dt = −h/τ +
  tanh(W·[x, h] + b) with a fixed τ = 1 (a trainable τ would be a 6,274th parameter), integrated by
  explicit Euler, 6 unfolds of 0.1 per step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from policies.cfc_cell import time_column
from policies.lstm_cell import LSTMCell


def _check(name: str, x: torch.Tensor, dims: int, input_size: int) -> None:
    if x.dim() != dims or x.shape[-1] != input_size or (dims == 3 and x.shape[1] < 1):
        want = "(B, T ≥ 1, I)" if dims == 3 else "(B, I)"
        raise ValueError(f"{name}: input must be {want} with I={input_size}, got {tuple(x.shape)}")


def _check_state(name: str, state: torch.Tensor, batch: int, width: int) -> None:
    if tuple(state.shape) != (batch, width):
        raise ValueError(f"{name}: state must be ({batch}, {width}), got {tuple(state.shape)}")


class LSTMHead(nn.Module):
    """LSTM + linear readout; the flat state packs [h, c], width 2·units.

    The LSTM is discrete-time: elapsed time is accepted (protocol) and ignored.

    Args:
        input_size: I (32 sensory features).
        units: H (the paper: 64; 19 to match the NCP's neuron count).
        output_size: outputs of the readout (1: curvature).
    """

    continuous_time = False
    """Ignores the elapsed time (a discrete-time head)."""

    def __init__(self, input_size: int = 32, units: int = 64, output_size: int = 1) -> None:
        super().__init__()
        self.input_size = int(input_size)
        self.units = int(units)
        self.output_size = int(output_size)
        self.state_size = 2 * self.units
        self.cell = LSTMCell(input_size, units)
        self.readout = nn.Linear(units, output_size)

    def initial_state(
        self, batch: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """Zeros (B, 2·units)."""
        return torch.zeros(batch, self.state_size, device=device, dtype=dtype)

    def step(
        self, x: torch.Tensor, state: torch.Tensor, elapsed_s: float | torch.Tensor = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, I), (B, 2H) -> y (B, output_size), state' (B, 2H). `elapsed_s` is ignored."""
        _check("LSTMHead", x, 2, self.input_size)
        _check_state("LSTMHead", state, x.shape[0], self.state_size)
        h, c = self.cell(x, (state[:, : self.units], state[:, self.units :]))
        return self.readout(h), torch.cat([h, c], dim=1)

    def forward_sequence(
        self, x: torch.Tensor, state: torch.Tensor | None = None, timespans: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, I) -> y (B, T, output_size), final state (B, 2H); equal to `step` T times."""
        _check("LSTMHead", x, 3, self.input_size)
        if state is None:
            state = self.initial_state(x.shape[0], x.device, x.dtype)
        _check_state("LSTMHead", state, x.shape[0], self.state_size)
        hs, h, c = self.cell.forward_sequence(x, state[:, : self.units], state[:, self.units :])
        return self.readout(hs), torch.cat([h, c], dim=1)

    def hidden_activity(self, state: torch.Tensor) -> torch.Tensor:
        """(B, 2H) -> (B, H) the LSTM outputs h."""
        return state[:, : self.units]


class CTRNNHead(nn.Module):
    """Continuous-time RNN + linear readout: dh/dt = −h/τ + tanh(W·[x, h] + b), explicit Euler.

    One step of elapsed time Δ (1.0 = one control period) runs `unfolds` Euler steps of `unfold_dt`·Δ
    each, the input held constant (the reference: 6 × 0.1).

    Args:
        input_size: I (32 sensory features).
        units: H (the paper: 64).
        output_size: outputs of the readout (1: curvature).
        unfolds: Euler steps per control step.
        unfold_dt: Euler step per unit of elapsed time.
        tau: the fixed time constant τ > 0 (not trained, as the reference's `fix_tau`).
    """

    continuous_time = True
    """Integrates over the elapsed time it is given (exported with an `elapsed_s` input)."""

    def __init__(
        self,
        input_size: int = 32,
        units: int = 64,
        output_size: int = 1,
        unfolds: int = 6,
        unfold_dt: float = 0.1,
        tau: float = 1.0,
    ) -> None:
        super().__init__()
        if unfolds < 1 or unfold_dt <= 0 or tau <= 0:
            raise ValueError(
                f"CTRNNHead: need unfolds ≥ 1, unfold_dt > 0, tau > 0; got {unfolds}, {unfold_dt}, {tau}"
            )
        self.input_size = int(input_size)
        self.units = int(units)
        self.output_size = int(output_size)
        self.state_size = self.units
        self.unfolds = int(unfolds)
        self.unfold_dt = float(unfold_dt)
        self.tau = float(tau)
        self.linear = nn.Linear(input_size + units, units)
        self.readout = nn.Linear(units, output_size)
        nn.init.xavier_uniform_(self.linear.weight)  # the reference: Glorot weights, zero bias
        nn.init.zeros_(self.linear.bias)

    def initial_state(
        self, batch: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """Zeros (B, units)."""
        return torch.zeros(batch, self.state_size, device=device, dtype=dtype)

    def _advance(
        self, x_part: torch.Tensor, h: torch.Tensor, rec_t: torch.Tensor, elapsed: float | torch.Tensor
    ) -> torch.Tensor:
        """One control step from the input's share x_part = W_x·x + b (B, H)."""
        dt = self.unfold_dt * elapsed
        for _ in range(self.unfolds):
            h = h + dt * (torch.tanh(torch.addmm(x_part, h, rec_t)) - h / self.tau)
        return h

    def step(
        self, x: torch.Tensor, state: torch.Tensor, elapsed_s: float | torch.Tensor = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, I), (B, H), elapsed control periods (float or (B,)) -> y (B, output_size), state' (B, H)."""
        _check("CTRNNHead", x, 2, self.input_size)
        _check_state("CTRNNHead", state, x.shape[0], self.state_size)
        weight = self.linear.weight
        x_part = F.linear(x, weight[:, : self.input_size], self.linear.bias)
        h = self._advance(x_part, state, weight[:, self.input_size :].t(), time_column(elapsed_s, x.shape[0]))
        return self.readout(h), h

    def forward_sequence(
        self, x: torch.Tensor, state: torch.Tensor | None = None, timespans: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, I), state (B, H) or None, timespans (B, T) or None -> y (B, T, output_size), final state."""
        _check("CTRNNHead", x, 3, self.input_size)
        batch, steps = x.shape[:2]
        if state is None:
            state = self.initial_state(batch, x.device, x.dtype)
        _check_state("CTRNNHead", state, batch, self.state_size)
        if timespans is not None and tuple(timespans.shape) != (batch, steps):
            raise ValueError(f"CTRNNHead: timespans must be ({batch}, {steps}), got {tuple(timespans.shape)}")
        weight = self.linear.weight
        x_parts = F.linear(x, weight[:, : self.input_size], self.linear.bias).unbind(1)
        rec_t = weight[:, self.input_size :].t()
        h, out = state, []
        for t, x_part in enumerate(x_parts):
            h = self._advance(x_part, h, rec_t, 1.0 if timespans is None else timespans[:, t, None])
            out.append(h)
        return self.readout(torch.stack(out, dim=1)), h

    def hidden_activity(self, state: torch.Tensor) -> torch.Tensor:
        """(B, H) -> (B, H): the state is the activity."""
        return state
