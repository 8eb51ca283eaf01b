"""The CfC sequence module and recurrent head: `ncps.torch.CfC`'s interface plus the head protocol.

`CfC(input_size, units_or_wiring, ...)` is dense (a `CfCCell` with a backbone MLP) when given a number
of units and wired (a `WiredCfCCell`, one masked sub-cell per wiring layer) when given a `Wiring`, as in
ncps. `forward(x, hx, timespans)` behaves like ncps's; the head protocol (`initial_state`, `step`,
`forward_sequence`, `hidden_activity`) serves the driving policy and the ONNX export.

Elapsed time: `timespans[:, t]` / `elapsed_s` is the elapsed time of step t in the cell's own unit, one
control period = 1.0 (the default). The name `elapsed_s` is the project's; read it as "elapsed steps".
Per-sample times (B,) scale each sample; ncps broadcasts them over neurons instead (a bug whenever B > 1).

With `mixed_memory=True` an LSTM cell runs before the CfC cell every step (Lechner & Hasani 2020's
memory augmentation, as ncps); the flat protocol state is then [h, c], width 2·units.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from policies.cfc_cell import CfCCell, check_mode, time_column
from policies.lstm_cell import LSTMCell
from policies.wired_cfc import WiredCfCCell
from policies.wiring import Wiring


class CfC(nn.Module):
    """A CfC RNN over sequences, and a recurrent head.

    Args:
        input_size: input features I (sensory inputs; must equal the wiring's input_dim when wired).
        units: number of neurons (dense) or a `Wiring` (wired: outputs are its motor neurons).
        proj_size: if given, a linear readout to this many outputs.
        return_sequences: `forward` returns every step's output (else only the last).
        batch_first: `forward` takes (B, T, I) (else (T, B, I)).
        mixed_memory: run an LSTM memory cell before the CfC cell each step.
        mode: `default`, `no_gate` or `pure`.
        activation: backbone activation (dense only): `lecun_tanh`, `silu`, `relu`, `tanh`, `gelu`.
        backbone_units, backbone_layers, backbone_dropout: backbone MLP (dense only; defaults 128, 1, 0.0).

    Attributes:
        units: N neurons. state_size: N, or 2·N with mixed memory. output_size: proj_size, else the
        motor neurons (wired) or N (dense). wiring: the `Wiring`, or None when dense.
    """

    continuous_time = True
    """Integrates over the elapsed time it is given (exported with an `elapsed_s` input)."""

    def __init__(
        self,
        input_size: int,
        units: int | Wiring,
        proj_size: int | None = None,
        return_sequences: bool = True,
        batch_first: bool = True,
        mixed_memory: bool = False,
        mode: str = "default",
        activation: str = "lecun_tanh",
        backbone_units: int | None = None,
        backbone_layers: int | None = None,
        backbone_dropout: float | None = None,
    ) -> None:
        super().__init__()
        check_mode(mode)
        self.input_size = int(input_size)
        self.proj_size = proj_size
        self.return_sequences = return_sequences
        self.batch_first = batch_first
        self.mixed_memory = mixed_memory
        self.mode = mode
        self.rnn_cell: CfCCell | WiredCfCCell
        if isinstance(units, Wiring):
            for name, value in [
                ("backbone_units", backbone_units),
                ("backbone_layers", backbone_layers),
                ("backbone_dropout", backbone_dropout),
            ]:
                if value is not None:
                    raise ValueError(
                        f"CfC: {name} cannot be used with a wiring (wired cells have no backbone)"
                    )
            self.wiring: Wiring | None = units
            self.units = units.units
            self.rnn_cell = WiredCfCCell(input_size, units, mode)
            cell_outputs = self.rnn_cell.output_size
        else:
            if isinstance(units, bool) or not isinstance(units, int) or units < 1:
                raise ValueError(f"CfC: units must be a positive int or a Wiring, got {units!r}")
            self.wiring = None
            self.units = units
            self.rnn_cell = CfCCell(
                input_size,
                units,
                mode,
                activation,
                128 if backbone_units is None else backbone_units,
                1 if backbone_layers is None else backbone_layers,
                0.0 if backbone_dropout is None else backbone_dropout,
            )
            cell_outputs = units
        self.lstm = LSTMCell(input_size, self.units) if mixed_memory else None
        self.fc = nn.Identity() if proj_size is None else nn.Linear(cell_outputs, proj_size)
        self.output_size = cell_outputs if proj_size is None else int(proj_size)
        self.state_size = 2 * self.units if mixed_memory else self.units

    # Head protocol ----------------------------------------------------------------------------------
    def initial_state(
        self, batch: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """Zeros (B, state_size)."""
        return torch.zeros(batch, self.state_size, device=device, dtype=dtype)

    def step(
        self, x: torch.Tensor, state: torch.Tensor, elapsed_s: float | torch.Tensor = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step.

        Args:
            x: (B, input_size).
            state: (B, state_size).
            elapsed_s: elapsed time in control periods (1.0 = one step): float, 0-d, or (B,).

        Returns:
            y (B, output_size) and the next state (B, state_size).
        """
        self._check_input(x, 2)
        self._check_state(state, x.shape[0])
        ts = time_column(elapsed_s, x.shape[0])
        h, c = self._split(state)
        if self.lstm is not None:
            h, c = self.lstm(x, (h, c))
        out, h = self.rnn_cell(x, h, ts)
        return self.fc(out), self._join(h, c)

    def forward_sequence(
        self, x: torch.Tensor, state: torch.Tensor | None = None, timespans: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """T steps (training), equal to `step` T times.

        Args:
            x: (B, T, input_size).
            state: (B, state_size), or None for zeros.
            timespans: (B, T) elapsed control periods per step, or None for ones.

        Returns:
            y (B, T, output_size) and the final state (B, state_size).
        """
        self._check_input(x, 3)
        batch = x.shape[0]
        if state is None:
            state = self.initial_state(batch, x.device, x.dtype)
        self._check_state(state, batch)
        timespans = self._check_timespans(timespans, x.shape[:2])
        h, c = self._split(state)
        out, h, c = self._run(x, h, c, timespans)
        return self.fc(out), self._join(h, c)

    def hidden_activity(self, state: torch.Tensor) -> torch.Tensor:
        """(B, state_size) -> (B, units) CfC states h; wired: in neuron-id order (column i = neuron i)."""
        h = state[:, : self.units]
        if self.wiring is None:
            return h
        return cast(WiredCfCCell, self.rnn_cell).hidden_activity(h)  # a wiring makes a WiredCfCCell

    # ncps interface ---------------------------------------------------------------------------------
    def forward(
        self,
        input: torch.Tensor,
        hx: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
        timespans: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        """As `ncps.torch.CfC.forward`.

        Args:
            input: (B, T, I) if batch_first else (T, B, I); or (T, I) unbatched.
            hx: initial state (B, N) (or (N,) unbatched); a tuple (h, c) with mixed memory; None: zeros.
            timespans: elapsed time per step, shaped like the input without features ((B, T), (T, B) or
                (T,); a trailing 1 is accepted); None: 1.0.

        Returns:
            (output, hx): output (B, T, out) / (T, B, out), or the last step's (B, out) when
            return_sequences is False; hx the final state, a tuple (h, c) with mixed memory.
        """
        if input.dim() not in (2, 3):
            raise ValueError(f"CfC: input must be 3-D (batched) or 2-D (unbatched), got {input.dim()}-D")
        batched = input.dim() == 3
        if not batched:
            input = input.unsqueeze(0 if self.batch_first else 1)
            if timespans is not None:
                timespans = timespans.unsqueeze(0 if self.batch_first else 1)
        if not self.batch_first:
            input = input.transpose(0, 1)
            if timespans is not None:
                timespans = timespans.transpose(0, 1)
        self._check_input(input, 3)
        batch = input.shape[0]
        if hx is None:
            h = input.new_zeros(batch, self.units)
            c = input.new_zeros(batch, self.units) if self.mixed_memory else None
        else:
            if self.mixed_memory and isinstance(hx, torch.Tensor):
                raise RuntimeError(
                    "a CfC with mixed_memory=True needs a tuple (h0, c0) as state, got a Tensor"
                )
            # hx's type follows mixed_memory (a tuple with it, checked above; a Tensor without it, as
            # ncps), which the signature cannot say; typing it would mean changing these checks.
            h, c = hx if self.mixed_memory else (hx, None)  # type: ignore[assignment]
            if h.dim() != (2 if batched else 1):
                raise RuntimeError(
                    f"for {'batched 3-D' if batched else 'unbatched 2-D'} input, hx must be "
                    f"{2 if batched else 1}-D, got {h.dim()}-D"
                )
            if not batched:
                h = h.unsqueeze(0)
                c = c.unsqueeze(0) if c is not None else None
        timespans = self._check_timespans(timespans, input.shape[:2])
        out, h, c = self._run(input, h, c, timespans)
        readout = self.fc(out if self.return_sequences else out[:, -1])
        if self.return_sequences and not self.batch_first:
            readout = readout.transpose(0, 1)
        if not batched:
            readout = readout.squeeze(0 if self.batch_first else 1)  # as ncps, also without sequences
            h = h[0]
            c = c[0] if c is not None else None
        # With mixed memory c is a Tensor (from hx or zeros), which mypy cannot follow through the flag.
        return readout, ((h, c) if self.mixed_memory else h)  # type: ignore[return-value]

    # Internals --------------------------------------------------------------------------------------
    def _run(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None, timespans: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(B, T, I) through the cell(s): cell outputs (B, T, out), final h and c."""
        if self.lstm is None:
            out, h = self.rnn_cell.forward_sequence(x, h, timespans)
            return out, h, None
        outputs = []
        for t in range(x.shape[1]):  # the LSTM feeds the CfC within each step: no pipelining here
            h, c = self.lstm(x[:, t], (h, c))
            ts = 1.0 if timespans is None else timespans[:, t, None]
            out, h = self.rnn_cell(x[:, t], h, ts)
            outputs.append(out)
        return torch.stack(outputs, dim=1), h, c

    def _split(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.lstm is None:
            return state, None
        return state[:, : self.units], state[:, self.units :]

    def _join(self, h: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return h if c is None else torch.cat([h, c], dim=1)

    def _check_input(self, x: torch.Tensor, dims: int) -> None:
        if x.dim() != dims or x.shape[-1] != self.input_size or (dims == 3 and x.shape[1] < 1):
            want = "(B, T ≥ 1, I)" if dims == 3 else "(B, I)"
            raise ValueError(f"CfC: input must be {want} with I={self.input_size}, got {tuple(x.shape)}")

    def _check_state(self, state: torch.Tensor, batch: int) -> None:
        if tuple(state.shape) != (batch, self.state_size):
            raise ValueError(f"CfC: state must be ({batch}, {self.state_size}), got {tuple(state.shape)}")

    @staticmethod
    def _check_timespans(timespans: torch.Tensor | None, shape: torch.Size) -> torch.Tensor | None:
        if timespans is None:
            return None
        if timespans.dim() == 3 and timespans.shape[-1] == 1:
            timespans = timespans[..., 0]
        if tuple(timespans.shape) != tuple(shape):
            raise ValueError(
                f"CfC: timespans must be {tuple(shape)} (batch, time), got {tuple(timespans.shape)}"
            )
        return timespans
