"""An LSTM cell with one fused linear map over [x, h] and a single bias vector.

The gates follow `ncps.torch.lstm.LSTMCell` (the CfC's mixed-memory cell): z = W·[x, h] + b split as
(candidate, input gate, forget gate, output gate), forget gate sigmoid(z_f + 1). One bias vector (not
torch.nn.LSTM's two) is what gives the paper's LSTM-64 its 24,897 parameters with a 65-weight readout:
4·64·(32 + 64 + 1) + 65.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LSTMCell(nn.Module):
    """One LSTM step: (x, (h, c)) -> (h', c').

    Args:
        input_size: I.
        hidden_size: H.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(
                f"LSTMCell: input_size and hidden_size must be ≥ 1, got {input_size}, {hidden_size}"
            )
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.linear = nn.Linear(input_size + hidden_size, 4 * hidden_size)
        self.init_weights()

    def init_weights(self) -> None:
        """As ncps: Xavier-uniform input weights, orthogonal recurrent weights, bias U(−0.1, 0.1)."""
        with torch.no_grad():
            w_in = torch.empty(4 * self.hidden_size, self.input_size)
            w_rec = torch.empty(4 * self.hidden_size, self.hidden_size)
            nn.init.xavier_uniform_(w_in)
            nn.init.orthogonal_(w_rec)
            self.linear.weight.copy_(torch.cat([w_in, w_rec], dim=1))
            nn.init.uniform_(self.linear.bias, -0.1, 0.1)

    @staticmethod
    def _gates(z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        candidate, input_gate, forget_gate, output_gate = z.chunk(4, dim=1)
        c = c * torch.sigmoid(forget_gate + 1.0) + torch.tanh(candidate) * torch.sigmoid(input_gate)
        return torch.tanh(c) * torch.sigmoid(output_gate), c

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step.

        Args:
            x: (B, I).
            state: (h, c), each (B, H).

        Returns:
            (h', c'), each (B, H).
        """
        h, c = state
        return self._gates(self.linear(torch.cat([x, h], dim=1)), c)

    def forward_sequence(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """T steps, equal to `forward` T times, with the input projection of every step in one matmul.

        Args:
            x: (B, T, I).
            h, c: (B, H) initial state.

        Returns:
            (B, T, H) outputs h, and the final h and c, each (B, H).
        """
        weight = self.linear.weight
        x_part = F.linear(x, weight[:, : self.input_size], self.linear.bias).unbind(1)
        rec_t = weight[:, self.input_size :].t()
        out = []
        for x_t in x_part:
            h, c = self._gates(torch.addmm(x_t, h, rec_t), c)
            out.append(h)
        return torch.stack(out, dim=1), h, c
