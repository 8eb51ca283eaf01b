"""Is a saliency map faithful? The deletion / insertion test (Petsiuk et al. 2018, "RISE"), for a scalar
regression output such as the curvature.

Pixels are ranked by the map (most salient first; ties broken at random, so a map with large flat areas
gets no order from pixel positions). For each fraction f of the pixels:

- deletion: the top-f pixels are set to the baseline (all channels) and |y(x_f) − y(x)| is measured;
  a faithful map changes the output *sooner* than a random ranking: a larger area under the curve;
- insertion: only the top-f pixels keep their values, the rest are baseline, and |y(x_f) − y(x)| is
  measured; a faithful map recovers the output sooner: a smaller area.

The random ranking is the reference: a map no better than random has deletion AUC ≤ the random
ranking's and insertion AUC ≥ it. The AUC is the curve's mean over f in [0, 1] (trapezoid), in the
output's units (1/m for curvature). The baseline is 0: for a per-image standardised input, the image's
own mean grey.

A recurrent policy is tested one control step at a time: `forward_fn` holds the state the step started
from, so only the frame's pixels change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

ForwardFn = Callable[[torch.Tensor], torch.Tensor]
"""inputs (N, C, H, W) -> (N,) scalar output (must accept any batch size N)."""

FRACTIONS = tuple(float(f) for f in np.linspace(0.0, 1.0, 11))
"""Fractions of pixels perturbed, 0 to 1 in steps of 0.1."""


@dataclass(frozen=True)
class FaithfulnessCurves:
    """Deletion and insertion curves of a batch of frames, each (B, S) |Δy| at `fractions` (S,).

    Attributes:
        fractions: (S,) fractions of the pixels perturbed, ascending, from 0 to 1.
        deletion, deletion_random: salient-first and random-order deletion curves.
        insertion, insertion_random: salient-first and random-order insertion curves.
    """

    fractions: np.ndarray
    deletion: np.ndarray
    deletion_random: np.ndarray
    insertion: np.ndarray
    insertion_random: np.ndarray

    def auc(self, curve: np.ndarray) -> np.ndarray:
        """(B,) the curve's mean over the fractions (trapezoid), in the output's units."""
        span = float(self.fractions[-1] - self.fractions[0])
        widths = np.diff(self.fractions)
        area = ((curve[:, 1:] + curve[:, :-1]) * 0.5 * widths).sum(axis=1)
        result: np.ndarray = area / span
        return result

    def scores(self) -> dict[str, np.ndarray]:
        """Per frame (B,): the four AUCs and the gains over random (> 0: better than random).

        Keys: `deletion_auc`, `deletion_random_auc`, `insertion_auc`, `insertion_random_auc`,
        `deletion_gain` (= deletion − random), `insertion_gain` (= random − insertion).
        """
        d, dr = self.auc(self.deletion), self.auc(self.deletion_random)
        i, ir = self.auc(self.insertion), self.auc(self.insertion_random)
        return {
            "deletion_auc": d,
            "deletion_random_auc": dr,
            "insertion_auc": i,
            "insertion_random_auc": ir,
            "deletion_gain": d - dr,
            "insertion_gain": ir - i,
        }


def salient_ranks(maps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(B, H, W) maps -> (B, H·W) int rank of each pixel, 0 = most salient; ties in random order."""
    flat = np.asarray(maps, np.float64).reshape(len(maps), -1)
    ranks = np.empty(flat.shape, np.int64)
    for b, row in enumerate(flat):
        order = np.lexsort((rng.random(row.size), -row))  # last key first: value desc, then random
        ranks[b, order] = np.arange(row.size)
    return ranks


def _curves(
    forward_fn: ForwardFn,
    inputs: torch.Tensor,
    reference: torch.Tensor,
    ranks: np.ndarray,
    fractions: np.ndarray,
    chunk: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(deletion (B, S), insertion (B, S)) |y(x_f) − y(x)| for one ranking."""
    b, _, h, w = inputs.shape
    counts = np.round(fractions * h * w).astype(np.int64)
    rank_t = torch.from_numpy(ranks).to(inputs.device).reshape(b, 1, h, w)
    batch = []
    for kind in ("deletion", "insertion"):
        for count in counts:
            top = rank_t < int(count)  # (B, 1, H, W) the top-`count` pixels
            keep = ~top if kind == "deletion" else top
            batch.append(inputs * keep.to(inputs.dtype))  # baseline 0 elsewhere
    stacked = torch.stack(batch, dim=1).reshape(-1, *inputs.shape[1:])  # (B·2S, C, H, W), sample-major
    with torch.no_grad():
        outputs = torch.cat([forward_fn(part) for part in stacked.split(chunk)])
    delta = (outputs.reshape(b, 2, len(counts)) - reference[:, None, None]).abs().float().cpu().numpy()
    return delta[:, 0], delta[:, 1]


def deletion_insertion(
    forward_fn: ForwardFn,
    inputs: torch.Tensor,
    maps: torch.Tensor | np.ndarray,
    fractions: tuple[float, ...] = FRACTIONS,
    random_orders: int = 2,
    seed: int = 0,
    chunk: int = 64,
) -> FaithfulnessCurves:
    """Deletion and insertion curves of `maps` and of random rankings (the reference).

    Args:
        forward_fn: (N, C, H, W) -> (N,) scalar output; called on batches of at most `chunk` inputs,
            and per sample must not depend on the rest of the batch. For a policy whose forward
            repeats a recurrent state per sample, N is what it must repeat for.
        inputs: (B, C, H, W) float, the frames as the network takes them (baseline 0).
        maps: (B, H, W) saliency of each frame (any non-negative scale; only the order counts).
        fractions: ascending fractions from 0 to 1.
        random_orders: random rankings averaged for the reference curves.
        seed: seed of the random rankings and the tie-breaks (same seed: same curves).
        chunk: forward batch size.

    Returns:
        The curves (`FaithfulnessCurves.scores()` gives the per-frame AUCs).
    """
    frac = np.asarray(fractions, np.float64)
    if frac.ndim != 1 or len(frac) < 2 or frac[0] != 0.0 or frac[-1] != 1.0 or np.any(np.diff(frac) <= 0):
        raise ValueError(f"deletion_insertion: fractions must ascend from 0 to 1, got {fractions}")
    if inputs.dim() != 4:
        raise ValueError(f"deletion_insertion: inputs must be (B, C, H, W), got {tuple(inputs.shape)}")
    maps_np = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    b, _, h, w = inputs.shape
    if maps_np.shape != (b, h, w):
        raise ValueError(f"deletion_insertion: maps must be (B, H, W) = {(b, h, w)}, got {maps_np.shape}")
    if random_orders < 1:
        raise ValueError(f"deletion_insertion: random_orders must be ≥ 1, got {random_orders}")
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        reference = forward_fn(inputs).reshape(b)
    deletion, insertion = _curves(forward_fn, inputs, reference, salient_ranks(maps_np, rng), frac, chunk)
    random_curves = [
        _curves(forward_fn, inputs, reference, salient_ranks(rng.random((b, h, w)), rng), frac, chunk)
        for _ in range(random_orders)
    ]
    return FaithfulnessCurves(
        fractions=frac,
        deletion=deletion,
        deletion_random=np.mean([c[0] for c in random_curves], axis=0),
        insertion=insertion,
        insertion_random=np.mean([c[1] for c in random_curves], axis=0),
    )
