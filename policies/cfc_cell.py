"""The closed-form continuous-time (CfC) cell: one step of h' = f(x, h, t), as `ncps.torch.CfCCell`.

Hasani et al. 2022. The cell maps the concatenation [x, h] (through an optional backbone MLP) to up to four
linear heads and combines them in closed form, with `t` the elapsed time of the step (1.0 = one step):

    default:  h' = tanh(ff1)·(1 − g) + g·tanh(ff2),   g = sigmoid(time_a·t + time_b)
    no_gate:  h' = tanh(ff1) + g·tanh(ff2)
    pure:     h' = −A·exp(−t·(|w_τ| + |ff1|))·ff1 + A

Parameter names, shapes and initialisation follow `ncps` (so state dicts map one to one). Unlike `ncps`:
the optional sparsity mask is a buffer (not a parameter that a checkpoint could overwrite), and a
per-sample elapsed time (B,) scales each sample's row (ncps broadcasts it over the neurons instead,
which is wrong, or fails, whenever batch ≠ 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CFC_MODES = ("default", "no_gate", "pure")
"""The closed-form variants of the reference library."""


class LeCun(nn.Module):
    """LeCun's scaled tanh, 1.7159·tanh(0.666·x) (the ncps backbone default)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(0.666 * x)


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "lecun_tanh": LeCun,
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}
"""Backbone activations by their ncps names."""


def check_mode(mode: str) -> str:
    """`mode` if it is a CfC mode, else a ValueError naming the valid ones."""
    if mode not in CFC_MODES:
        raise ValueError(f"unknown CfC mode {mode!r}; valid modes: {list(CFC_MODES)}")
    return mode


def time_column(elapsed: float | torch.Tensor, batch: int) -> float | torch.Tensor:
    """Elapsed time of one step as something that broadcasts over (B, H): a float, a 0-d or (B, 1) tensor.

    Args:
        elapsed: a float (all samples), a 0-d tensor, or a (B,) / (B, 1) tensor (one per sample).
        batch: B.
    """
    if not isinstance(elapsed, torch.Tensor):
        return float(elapsed)
    if elapsed.dim() == 0:
        return elapsed
    if elapsed.shape in ((batch,), (batch, 1)):
        return elapsed.reshape(batch, 1)
    raise ValueError(
        f"elapsed time must be a float, a 0-d tensor or ({batch},), got shape {tuple(elapsed.shape)}"
    )


def cfc_update(
    z: torch.Tensor,
    ts: float | torch.Tensor,
    mode: str,
    w_tau_abs: torch.Tensor | None = None,
    a: torch.Tensor | None = None,
) -> torch.Tensor:
    """The closed-form combination of the heads' pre-activations.

    Args:
        z: (B, k·H) head pre-activations, head-major: [ff1 | ff2 | time_a | time_b] (k = 4), or ff1 (pure).
        ts: elapsed time: a float, or a tensor broadcasting to (B, H).
        mode: `default`, `no_gate` or `pure`.
        w_tau_abs: (1, H) |w_τ| (pure mode only).
        a: (1, H) A (pure mode only).

    Returns:
        (B, H) the new hidden state h'.
    """
    if mode == "pure":
        assert w_tau_abs is not None and a is not None  # for mypy: pure mode passes both (pure_params)
        decay = torch.exp(-ts * (w_tau_abs + z.abs()))
        return a - a * decay * z  # = −A·exp(…)·ff1 + A
    ff1, ff2, t_a, t_b = z.chunk(4, dim=-1)
    ff1 = torch.tanh(ff1)
    ff2 = torch.tanh(ff2)
    if isinstance(ts, float) and ts == 1.0:
        gate = torch.sigmoid(t_a + t_b)  # the common case: skip a multiply by one
    else:
        gate = torch.sigmoid(t_a * ts + t_b)
    if mode == "no_gate":
        return ff1 + gate * ff2
    return torch.lerp(ff1, ff2, gate)  # = ff1·(1 − g) + g·ff2


class CfCCell(nn.Module):
    """One CfC step (dense, or with a fixed sparsity mask on ff1/ff2), same arguments as `ncps.torch.CfCCell`.

    Args:
        input_size: I, input features.
        hidden_size: H, neurons.
        mode: `default`, `no_gate` or `pure`.
        backbone_activation: `lecun_tanh`, `silu`, `relu`, `tanh` or `gelu`.
        backbone_units: width of the backbone MLP.
        backbone_layers: backbone depth; 0 feeds [x, h] straight to the heads.
        backbone_dropout: dropout after every backbone layer but the first (as ncps).
        sparsity_mask: optional (I + H, H) [source, target] connectivity (signs ignored) that masks the
            ff1/ff2 weights (not the time heads, as ncps); needs `backbone_layers == 0`.
    """

    # A buffer registered by name (None without a mask); declared for type checkers, to which
    # nn.Module's __getattr__ says only `Tensor | Module`.
    sparsity_mask: torch.Tensor | None

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        mode: str = "default",
        backbone_activation: str = "lecun_tanh",
        backbone_units: int = 128,
        backbone_layers: int = 1,
        backbone_dropout: float = 0.0,
        sparsity_mask: np.ndarray | torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(
                f"CfCCell: input_size and hidden_size must be ≥ 1, got {input_size}, {hidden_size}"
            )
        if backbone_activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown backbone activation {backbone_activation!r}; valid: {sorted(ACTIVATIONS)}"
            )
        if backbone_layers < 0 or (backbone_layers > 0 and backbone_units < 1):
            raise ValueError(f"CfCCell: bad backbone {backbone_layers} layers × {backbone_units} units")
        if not 0.0 <= backbone_dropout < 1.0:
            raise ValueError(f"CfCCell: backbone_dropout must be in [0, 1), got {backbone_dropout}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.mode = check_mode(mode)
        self.backbone_layers = int(backbone_layers)
        self.backbone = None
        if backbone_layers > 0:
            activation = ACTIVATIONS[backbone_activation]
            layers: list[nn.Module] = [nn.Linear(input_size + hidden_size, backbone_units), activation()]
            for _ in range(1, backbone_layers):  # same module indices as ncps, so state dicts match
                layers += [nn.Linear(backbone_units, backbone_units), activation()]
                if backbone_dropout > 0.0:
                    layers.append(nn.Dropout(backbone_dropout))
            self.backbone = nn.Sequential(*layers)
        head_in = input_size + hidden_size if backbone_layers == 0 else backbone_units
        self.ff1 = nn.Linear(head_in, hidden_size)
        if mode == "pure":
            self.w_tau = nn.Parameter(torch.zeros(1, hidden_size))
            self.A = nn.Parameter(torch.ones(1, hidden_size))
        else:
            self.ff2 = nn.Linear(head_in, hidden_size)
            self.time_a = nn.Linear(head_in, hidden_size)
            self.time_b = nn.Linear(head_in, hidden_size)
        if sparsity_mask is not None:
            mask = torch.as_tensor(np.abs(np.asarray(sparsity_mask, dtype=np.float32))).T.contiguous()
            if mask.shape != (hidden_size, head_in) or backbone_layers != 0:
                raise ValueError(
                    f"CfCCell: sparsity_mask must be ({head_in}, {hidden_size}) [source, target] and needs "
                    f"backbone_layers=0, got {tuple(mask.T.shape)} with {backbone_layers} backbone layers"
                )
            self.register_buffer("sparsity_mask", mask)
        else:
            self.register_buffer("sparsity_mask", None)
        self.init_weights()

    @property
    def heads(self) -> int:
        """Number of linear heads k (4, or 1 in pure mode)."""
        return 1 if self.mode == "pure" else 4

    def init_weights(self) -> None:
        """Xavier-uniform on every trainable matrix (w_τ and A included, as ncps); default biases."""
        for w in self.parameters():
            if w.dim() == 2 and w.requires_grad:
                nn.init.xavier_uniform_(w)

    def fused_heads(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The heads as one linear map, masked: weight (k·H, head_in) head-major, bias (k·H,)."""
        mask = self.sparsity_mask
        ff1 = self.ff1.weight if mask is None else self.ff1.weight * mask
        if self.mode == "pure":
            return ff1, self.ff1.bias
        ff2 = self.ff2.weight if mask is None else self.ff2.weight * mask
        weight = torch.cat([ff1, ff2, self.time_a.weight, self.time_b.weight], dim=0)
        bias = torch.cat([self.ff1.bias, self.ff2.bias, self.time_a.bias, self.time_b.bias], dim=0)
        return weight, bias

    def pure_params(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(|w_τ|, A), each (1, H), in pure mode; (None, None) otherwise."""
        if self.mode != "pure":
            return None, None
        return self.w_tau.abs(), self.A

    def forward(
        self, input: torch.Tensor, hx: torch.Tensor, ts: float | torch.Tensor = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step.

        Args:
            input: (B, I).
            hx: (B, H).
            ts: elapsed time of the step (1.0 = one step): float, 0-d, or (B,) per sample.

        Returns:
            (h', h'), each (B, H) (output and state, as ncps).
        """
        ts = time_column(ts, input.shape[0])
        features = torch.cat([input, hx], dim=1)
        if self.backbone is not None:
            features = self.backbone(features)
        weight, bias = self.fused_heads()
        w_tau_abs, a = self.pure_params()
        h = cfc_update(F.linear(features, weight, bias), ts, self.mode, w_tau_abs, a)
        return h, h

    def forward_sequence(
        self, x: torch.Tensor, hx: torch.Tensor, timespans: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """T steps, equal to calling `forward` T times, with the input's share of the first linear layer
        computed for all steps in one matmul.

        Args:
            x: (B, T, I).
            hx: (B, H) initial state.
            timespans: (B, T) elapsed time per step, or None for 1.0.

        Returns:
            (B, T, H) hidden states, and the final (B, H).
        """
        i = self.input_size
        heads_w, heads_b = self.fused_heads()
        # The backbone's first layer's Parameters, or the heads' fused (masked) weight and bias.
        first_w: torch.Tensor
        first_b: torch.Tensor
        if self.backbone is not None:
            first = cast(nn.Linear, self.backbone[0])  # built so in __init__; Sequential says Module
            first_w, first_b, rest = first.weight, first.bias, self.backbone[1:]
        else:
            first_w, first_b, rest = heads_w, heads_b, None
        x_part = F.linear(x, first_w[:, :i], first_b).unbind(1)
        h_weight_t = first_w[:, i:].t()
        w_tau_abs, a = self.pure_params()
        steps_ts: Sequence[float | torch.Tensor] = (
            [1.0] * x.shape[1] if timespans is None else timespans.unsqueeze(-1).unbind(1)
        )
        h, out = hx, []
        for x_t, ts in zip(x_part, steps_ts):
            z = torch.addmm(x_t, h, h_weight_t)
            if rest is not None:
                z = F.linear(rest(z), heads_w, heads_b)
            h = cfc_update(z, ts, self.mode, w_tau_abs, a)
            out.append(h)
        return torch.stack(out, dim=1), h
