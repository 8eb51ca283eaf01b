"""The recurrent head interface every policy head implements (LTC, CfC, LSTM, CT-RNN, stateless).

A head maps sensory features to outputs while carrying a flat recurrent state it never holds itself:
`step` takes the state and returns the next one (so `DrivingPolicy`, the ONNX export and `PolicyRunner`
treat every head alike). Time is measured in control periods: an elapsed time of 1.0 is one step of the
control loop; discrete-time heads (LSTM, stateless) accept it and ignore it.

    features (B, I) ─ step(features, state (B, S), elapsed) ─► (y (B, O), state' (B, S))
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class RecurrentHead(Protocol):
    """What `DrivingPolicy` needs of a head (a `torch.nn.Module` implementing these members).

    Attributes:
        input_size: I, the width of the sensory features the head takes.
        output_size: O, the width of its output (1 for the curvature heads of the registry).
        state_size: S, the width of the flat recurrent state (0 for a head without memory).
    """

    # Read-only properties: a head may store them as attributes or compute them (LTC derives them from
    # its wiring), and either satisfies a read-only protocol member.
    @property
    def input_size(self) -> int: ...

    @property
    def output_size(self) -> int: ...

    @property
    def state_size(self) -> int: ...

    def initial_state(
        self, batch: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """The zero state of a new episode.

        Args:
            batch: B.
            device: where the state lives (None: the default device).
            dtype: its dtype.

        Returns:
            (B, state_size) zeros.
        """
        ...

    def step(
        self, x: torch.Tensor, state: torch.Tensor, elapsed_s: float | torch.Tensor = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of the head.

        Args:
            x: (B, input_size) sensory features.
            state: (B, state_size).
            elapsed_s: time since the previous step in control periods (1.0 = one step), a float, a 0-d
                tensor or a (B,) tensor.

        Returns:
            y (B, output_size) and the next state (B, state_size).
        """
        ...

    def forward_sequence(
        self, x: torch.Tensor, state: torch.Tensor | None = None, timespans: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """T steps at once (training); equal to calling `step` T times.

        Args:
            x: (B, T, input_size) sensory features.
            state: (B, state_size) initial state, or None for zeros.
            timespans: (B, T) elapsed control periods of each step, or None for ones.

        Returns:
            y (B, T, output_size) and the final state (B, state_size).
        """
        ...

    def hidden_activity(self, state: torch.Tensor) -> torch.Tensor:
        """Neuron activity in a state, for interpretability.

        Args:
            state: (B, state_size).

        Returns:
            (B, units): one column per neuron (units = 0 for a head without memory).
        """
        ...
