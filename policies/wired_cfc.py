"""The wired CfC: one CfC sub-cell per wiring layer (inter → command → motor), as `ncps.torch.WiredCfCCell`.

Each step runs the layers in order; layer l sees the new output of layer l−1 (the sensory input for
layer 0) concatenated with its own previous state. Its ff1/ff2 weights are masked by the wiring, exactly
as ncps builds the masks:

    layer 0:  [|sensory_adjacency[:, layer0]| ; ones(H0, H0)]            ((S + H0), H0) [source, target]
    layer l:  [|adjacency[layer(l−1), layer l]| ; ones(Hl, Hl)]           ((H(l−1) + Hl), Hl)

so the recurrence inside a layer is dense (the wiring's command→command synapses are not used, as in
ncps) and the time heads time_a/time_b are not masked. The state is the layers' states concatenated in
layer order (inter, command, motor: ncps's order, not the neuron ids); `hidden_activity` reorders it.

Speed: `forward_sequence` runs the layers as a pipeline over time. At iteration k, layer l computes its
state at time k − l, which needs only layer l−1 at time k − l and layer l at time k − l − 1, both
produced at iteration k − 1. So all layers advance together with one matmul against a block-bidiagonal
weight and one closed-form update over all neurons, T + L − 1 iterations in all, the masked weights and
the input projection of every step computed once per call. The arithmetic per neuron is that of the
step-by-step recursion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from policies.cfc_cell import CfCCell, cfc_update, check_mode
from policies.wiring import Wiring


def layer_masks(wiring: Wiring) -> list[np.ndarray]:
    """ncps's ff1/ff2 masks per layer, each ((inputs + H_l), H_l) [source, target], entries 0/1."""
    masks = []
    for l, neurons in enumerate(wiring.layers):
        if l == 0:
            feed = wiring.sensory_adjacency[:, neurons]
        else:
            feed = wiring.adjacency[np.ix_(wiring.layers[l - 1], neurons)]
        masks.append(np.concatenate([np.abs(feed), np.ones((len(neurons), len(neurons)))], axis=0))
    return masks


class WiredCfCCell(nn.Module):
    """A CfC step over a layered wiring; outputs the motor neurons 0..M−1 (which must be in the last layer).

    ncps outputs the whole last layer: the same for an NCP (its last layer is the motor layer), all N
    neurons for a single-layer wiring (FullyConnected, Random) though its `output_size` says M. Ours
    gives the M motor neurons, the first M of the ncps output.

    Args:
        input_size: S, must equal `wiring.input_dim` (None: take the wiring's).
        wiring: the connectivity; its `layers` give the sub-cells (input side first).
        mode: `default`, `no_gate` or `pure`.
    """

    # Buffers registered by name; declared for type checkers, to which nn.Module's __getattr__ says
    # only `Tensor | Module`.
    state_index_of_neuron: torch.Tensor
    wiring_digest: torch.Tensor

    def __init__(self, input_size: int | None, wiring: Wiring, mode: str = "default") -> None:
        super().__init__()
        if not isinstance(wiring, Wiring):
            raise TypeError(f"WiredCfCCell needs a policies.wiring.Wiring, got {type(wiring).__name__}")
        if input_size is not None and input_size != wiring.input_dim:
            raise ValueError(f"input_size={input_size} but the wiring has {wiring.input_dim} sensory inputs")
        self.wiring = wiring
        self.mode = check_mode(mode)
        self.input_size = wiring.input_dim
        self._layers: list[CfCCell] = []
        in_features = wiring.input_dim
        for l, mask in enumerate(layer_masks(wiring)):
            size = len(wiring.layers[l])
            cell = CfCCell(in_features, size, mode, "lecun_tanh", 0, 0, 0.0, sparsity_mask=mask)
            self.add_module(f"layer_{l}", cell)
            self._layers.append(cell)
            in_features = size
        order = [i for layer in wiring.layers for i in layer]  # neuron id at each state position
        self.register_buffer("state_index_of_neuron", torch.as_tensor(np.argsort(order)), persistent=False)
        last = wiring.layers[-1]
        motor = list(range(wiring.output_dim))
        if not set(motor) <= set(last):
            raise ValueError(
                f"WiredCfCCell: the motor neurons 0..{wiring.output_dim - 1} must be in the last layer"
            )
        self._motor_positions = [last.index(i) for i in motor]  # within the last layer's state
        digest = np.frombuffer(bytes.fromhex(wiring.digest()), dtype=np.uint8).copy()
        self.register_buffer("wiring_digest", torch.as_tensor(digest))

    # Sizes ------------------------------------------------------------------------------------------
    @property
    def state_size(self) -> int:
        return self.wiring.units

    @property
    def layer_sizes(self) -> list[int]:
        return [len(layer) for layer in self.wiring.layers]

    @property
    def num_layers(self) -> int:
        return self.wiring.num_layers

    @property
    def sensory_size(self) -> int:
        return self.wiring.input_dim

    @property
    def motor_size(self) -> int:
        return self.wiring.output_dim

    @property
    def output_size(self) -> int:
        return self.motor_size

    @property
    def synapse_count(self) -> int:
        return self.wiring.synapse_count

    @property
    def sensory_synapse_count(self) -> int:
        return self.wiring.sensory_synapse_count

    def hidden_activity(self, state: torch.Tensor) -> torch.Tensor:
        """(B, N) state in layer order -> (B, N) activity in neuron-id order (column i = neuron i)."""
        return state.index_select(1, self.state_index_of_neuron)

    # Checkpoints: refuse weights trained on another wiring ------------------------------------------
    # The digest is a uint8 buffer (not extra state: the ONNX tracer cannot take non-tensor state).
    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # Checked before any weight is copied (children load after this), so a refused load changes nothing.
        theirs = state_dict.get(prefix + "wiring_digest")
        if theirs is not None and not torch.equal(theirs.cpu(), self.wiring_digest.cpu()):
            raise ValueError(
                f"checkpoint wiring {bytes(theirs.cpu().tolist()).hex()} differs from this module's "
                f"{self.wiring.digest()}"
            )
        for l, cell in enumerate(self._layers):
            mask = state_dict.get(f"{prefix}layer_{l}.sparsity_mask")
            assert cell.sparsity_mask is not None  # for mypy: every wired sub-cell is built with a mask
            if mask is not None and (
                mask.shape != cell.sparsity_mask.shape
                or not torch.equal(mask.cpu(), cell.sparsity_mask.cpu())
            ):
                raise ValueError(
                    f"checkpoint wiring differs from this module's {self.wiring.digest()}: "
                    f"the sparsity mask of layer {l} does not match"
                )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # Computation ------------------------------------------------------------------------------------
    def forward(
        self, input: torch.Tensor, hx: torch.Tensor, timespans: float | torch.Tensor = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step, layer after layer.

        Args:
            input: (B, S).
            hx: (B, N) state in layer order.
            timespans: elapsed time of the step (1.0 = one step): float, 0-d, or (B,) per sample.

        Returns:
            motor output (B, M) and the new state (B, N).
        """
        states = torch.split(hx, self.layer_sizes, dim=1)
        new_states, inputs = [], input
        for cell, h in zip(self._layers, states):
            inputs, _ = cell(inputs, h, timespans)
            new_states.append(inputs)
        return self._motor(inputs), torch.cat(new_states, dim=1)

    def _motor(self, last_layer: torch.Tensor) -> torch.Tensor:
        """(…, H_last) last layer -> (…, M) motor neurons 0..M−1 (the whole layer for an NCP)."""
        positions = self._motor_positions
        if positions == list(range(len(positions))):
            return last_layer[..., : len(positions)]
        return last_layer[..., positions]

    def pipeline_weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The masked weights of all layers as one pipelined map (see the module docstring).

        Returns:
            w_state (k·N, N): head-major rows, state columns; layer l's rows hold its recurrent block
                and (l > 0) its block over layer l−1.
            w_input (k·H0, S): layer 0's rows over the sensory input.
            bias (k·N,).
        """
        k, n, sizes = self._layers[0].heads, self.state_size, self.layer_sizes
        offsets = np.cumsum([0, *sizes]).tolist()
        w_state: torch.Tensor | None = None
        biases = []
        for l, cell in enumerate(self._layers):
            weight, bias = cell.fused_heads()
            weight = weight.view(k, sizes[l], -1)
            if w_state is None:
                w_state = weight.new_zeros(k, n, n)
            rows = slice(offsets[l], offsets[l + 1])
            w_state[:, rows, rows] = weight[:, :, cell.input_size :]
            if l == 0:
                w_input = weight[:, :, : cell.input_size].reshape(k * sizes[0], -1)
            else:
                w_state[:, rows, offsets[l - 1] : offsets[l]] = weight[:, :, : cell.input_size]
            biases.append(bias.view(k, sizes[l]))
        assert w_state is not None  # for mypy: a wiring has at least one layer
        return w_state.view(k * n, n), w_input, torch.cat(biases, dim=1).reshape(k * n)

    def forward_sequence(
        self, x: torch.Tensor, hx: torch.Tensor, timespans: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """T steps, equal to calling `forward` T times (pipelined over the layers).

        Args:
            x: (B, T, S).
            hx: (B, N) initial state in layer order.
            timespans: (B, T) elapsed time per step, or None for 1.0.

        Returns:
            motor outputs (B, T, M) and the final state (B, N).
        """
        batch, steps = x.shape[:2]
        k, n, sizes, depth = self._layers[0].heads, self.state_size, self.layer_sizes, self.num_layers
        offsets = np.cumsum([0, *sizes]).tolist()
        iterations = steps + depth - 1
        w_state, w_input, bias = self.pipeline_weights()
        # Layer 0's input share for every step; other layers' columns and the last L − 1 (drain) iterations
        # get zeros: in the drain, the early layers compute states past T − 1 that nothing reads.
        x_part = F.linear(x, w_input).view(batch, steps, k, sizes[0])
        x_part = F.pad(x_part, (0, n - sizes[0], 0, 0, 0, depth - 1)).reshape(batch, iterations, k * n) + bias
        x_steps = x_part.unbind(1)
        ts_steps: Sequence[float | torch.Tensor]
        if timespans is None:
            ts_steps = [1.0] * iterations
        else:  # neuron j of layer l at iteration k advances by timespans[:, k − l]
            padded = F.pad(timespans, (depth - 1, depth - 1), value=1.0)
            skewed = [
                padded[:, depth - 1 - l : depth - 1 - l + iterations, None].expand(batch, iterations, size)
                for l, size in enumerate(sizes)
            ]
            ts_steps = torch.cat(skewed, dim=2).unbind(1)
        w_tau_abs, a = self._pure_params()
        w_state_t = w_state.t()
        positions = torch.arange(n, device=x.device)
        finals: list[torch.Tensor | None] = [None] * depth
        state, outputs = hx, []
        for it in range(iterations):
            state_new = cfc_update(
                torch.addmm(x_steps[it], state, w_state_t), ts_steps[it], self.mode, w_tau_abs, a
            )
            if it < depth - 1:  # layers above `it` have not started: they keep the initial state
                state_new = torch.where(positions < offsets[it + 1], state_new, hx)
            state = state_new
            if it >= depth - 1:
                outputs.append(state[:, offsets[-2] :])
            for l in range(depth):
                if it == steps - 1 + l:
                    finals[l] = state[:, offsets[l] : offsets[l + 1]]
        # Every slot is filled: layer l's at iteration steps − 1 + l ≤ iterations − 1.
        return self._motor(torch.stack(outputs, dim=1)), torch.cat(finals, dim=1)  # type: ignore[arg-type]

    def _pure_params(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if self.mode != "pure":
            return None, None
        return (
            torch.cat([cell.w_tau.abs() for cell in self._layers], dim=1),
            torch.cat([cell.A for cell in self._layers], dim=1),
        )
