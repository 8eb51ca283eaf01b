"""The NCP paper's training loss: squared error weighted by exp(α·|y|), normalised.

Definition (labels and predictions in units of the policy's `curvature_scale_1pm`, so α is free of
the curvature unit): with y_i = label_i / scale and ŷ_i = prediction_i / scale over every frame i of
every window of the batch,

    w_i  = exp(α·|y_i|)                      (0 for a frame whose label is missing: NaN or inf)
    loss = Σ_i w_i·(ŷ_i − y_i)² / Σ_i w_i  =  mean_i[(w_i / mean_j w_j)·(ŷ_i − y_i)²]

so the weights average to one over the batch, curves count more than straights, and α = 0 gives the
plain mean squared error. The loss of the zero predictor is Σ w_i y_i² / Σ w_i. Under DDP the sums run
over the *global* batch (`weight_total` is all-reduced before dividing), so N ranks give exactly the
gradient of one process holding the whole batch. The exponent is capped at `MAX_EXPONENT` so a wild
label cannot overflow float32.
"""

from __future__ import annotations

import torch

MAX_EXPONENT = 50.0
"""Cap of α·|y|: e^50 ≈ 5e21, far from float32's limit even summed over millions of frames."""


def curve_weights(labels_1pm: torch.Tensor, curvature_scale_1pm: float, alpha: float) -> torch.Tensor:
    """Un-normalised weights exp(α·|y / scale|), zero where the label is missing.

    Args:
        labels_1pm: (B, T) expert curvature, 1/m (NaN marks a missing label).
        curvature_scale_1pm: the policy's curvature unit, 1/m.
        alpha: weight exponent (dimensionless).

    Returns:
        (B, T) float32 weights >= 0.
    """
    valid = torch.isfinite(labels_1pm)
    scaled = torch.where(valid, labels_1pm, torch.zeros_like(labels_1pm)).float() / curvature_scale_1pm
    weights = torch.exp(torch.clamp(alpha * scaled.abs(), max=MAX_EXPONENT))
    return weights * valid


def weighted_error_sums(
    pred_1pm: torch.Tensor, labels_1pm: torch.Tensor, curvature_scale_1pm: float, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The sums the loss is made of, for accumulating over batches or ranks.

    Args:
        pred_1pm: (B, T) predicted curvature, 1/m.
        labels_1pm: (B, T) expert curvature, 1/m (NaN = missing).
        curvature_scale_1pm: the policy's curvature unit, 1/m.
        alpha: weight exponent.

    Returns:
        Σ w·(ŷ − y)² (differentiable), Σ w·y² (the zero predictor's), Σ w; float32 scalars.
    """
    if pred_1pm.shape != labels_1pm.shape:
        raise ValueError(
            f"loss: predictions {tuple(pred_1pm.shape)} and labels {tuple(labels_1pm.shape)} differ"
        )
    weights = curve_weights(labels_1pm, curvature_scale_1pm, alpha)
    valid = weights > 0
    y = torch.where(valid, labels_1pm, torch.zeros_like(labels_1pm)).float() / curvature_scale_1pm
    y_hat = pred_1pm.float() / curvature_scale_1pm
    error = torch.where(valid, (y_hat - y) ** 2, torch.zeros_like(y_hat))  # NaN-free where masked
    return (weights * error).sum(), (weights * y**2).sum(), weights.sum()


def weighted_squared_error(
    pred_1pm: torch.Tensor,
    labels_1pm: torch.Tensor,
    curvature_scale_1pm: float,
    alpha: float,
    weight_total: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """The normalised curve-weighted loss of one batch (see the module docstring).

    Args:
        pred_1pm: (B, T) predicted curvature, 1/m.
        labels_1pm: (B, T) expert curvature, 1/m (NaN = missing, ignored).
        curvature_scale_1pm: the policy's curvature unit, 1/m.
        alpha: weight exponent.
        weight_total: Σ w to divide by; None uses this batch's own. Under DDP pass the global Σ w
            divided by the world size (DDP averages the ranks' gradients).

    Returns:
        Scalar float32 loss in (curvature_scale)² units; 0 when no label in the batch is valid.
    """
    error_sum, _, own_total = weighted_error_sums(pred_1pm, labels_1pm, curvature_scale_1pm, alpha)
    total = own_total if weight_total is None else weight_total
    if not isinstance(total, torch.Tensor):
        total = torch.tensor(float(total), device=error_sum.device)
    return error_sum / torch.clamp(total, min=torch.finfo(torch.float32).tiny)
