"""A head without memory, so feed-forward policies (the PilotNet-like CNN) fit `RecurrentHead`."""

from __future__ import annotations

import torch
from torch import nn


class StatelessHead(nn.Module):
    """Passes the perception's output through; the state is empty, (B, 0).

    Args:
        input_size: width of the perception output (1 for a CNN that regresses curvature itself).
    """

    continuous_time = False
    """Ignores the elapsed time (a discrete-time head)."""

    state_size = 0
    units = 0

    def __init__(self, input_size: int = 1) -> None:
        super().__init__()
        self.input_size = int(input_size)
        self.output_size = int(input_size)

    def initial_state(
        self, batch: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """The empty state (B, 0)."""
        return torch.zeros(batch, 0, device=device, dtype=dtype)

    def step(
        self, x: torch.Tensor, state: torch.Tensor, elapsed_s: float | torch.Tensor = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, F) -> (B, F), state unchanged; `elapsed_s` (control periods) is accepted and ignored."""
        return x, state

    def forward_sequence(
        self, x: torch.Tensor, state: torch.Tensor | None = None, timespans: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, F) -> (B, T, F), and the (empty) state; `timespans` is ignored."""
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device)
        return x, state

    def hidden_activity(self, state: torch.Tensor) -> torch.Tensor:
        """(B, 0): no neurons (`DrivingPolicy.inspect_step` reports the perception's last layer instead)."""
        return state
