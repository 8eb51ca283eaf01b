"""The elapsed-time input of an export (issue 17): which graphs take it, what their contract says, and the
parity check at irregular frame times.

A continuous-time head (`head.continuous_time`: LTC, CfC, CTRNN) integrates over the time between frames;
its graphs take `elapsed_s` (1, 1) float32 seconds. A discrete-time head's graphs do not, and their
metadata says so, so a runtime never feeds a time a graph would ignore.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch

from drive.export.graphs import CONTROL_PERIOD_S, graph_state_size, takes_elapsed
from drive.export.parity import (
    ParityResult,
    compare_rollouts,
    full_step,
    irregular_elapsed_s,
    onnx_rollout,
    torch_rollout,
)
from drive.onboard.contract import ELAPSED_INPUT, ELAPSED_UNITS, MetaKey
from policies.driving_policy import DrivingPolicy


def elapsed_metadata(policy: DrivingPolicy, control_rate_hz: float) -> dict[str, str]:
    """The contract's elapsed-time keys: the input's name and unit, or "none" and why."""
    if takes_elapsed(policy):
        return {
            MetaKey.ELAPSED_INPUT: ELAPSED_INPUT,
            MetaKey.ELAPSED_UNITS: ELAPSED_UNITS,
            MetaKey.ELAPSED_NOTE: (
                f"continuous-time head: integrates over {ELAPSED_INPUT} (1, 1) float32, seconds since the "
                f"previous frame, divided by the control period {1.0 / control_rate_hz!r} s in the graph"
            ),
        }
    return {
        MetaKey.ELAPSED_INPUT: "none",
        MetaKey.ELAPSED_UNITS: ELAPSED_UNITS,
        MetaKey.ELAPSED_NOTE: "discrete-time head: no elapsed input, every call is one control period",
    }


def with_elapsed(
    policy: DrivingPolicy, args: tuple[torch.Tensor, ...], names: list[str]
) -> tuple[tuple[torch.Tensor, ...], list[str]]:
    """A graph's example inputs and input names, with `ELAPSED_INPUT` (one period) appended when
    `policy`'s head is continuous-time."""
    if not takes_elapsed(policy):
        return args, names
    return (*args, torch.full((1, 1), CONTROL_PERIOD_S)), [*names, ELAPSED_INPUT]


def irregular_parity(
    policy: DrivingPolicy, full: onnx.ModelProto, frames: np.ndarray, source: str
) -> list[ParityResult]:
    """PyTorch vs the full graph over `frames` at irregular elapsed times (`irregular_elapsed_s`: 0.5 to 3
    periods), each side carrying its own state; [] for a graph without the elapsed input."""
    if not takes_elapsed(policy):
        return []
    elapsed = irregular_elapsed_s(len(frames))
    return [
        compare_rollouts(
            torch_rollout(policy, frames, elapsed),
            onnx_rollout(full_step(full), frames, graph_state_size(policy), elapsed),
            f"{source}, irregular elapsed times of 0.5 to 3 periods",
            policy.state_size,
        )
    ]
