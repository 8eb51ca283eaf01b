"""Open-loop metrics of a policy on a recorded drive: error against the recorded label, and smoothness.

- `mae_1pm`, `rmse_1pm`, `bias_1pm`: mean absolute, root-mean-square and mean signed error of the
  policy's curvature against the label (1/m), over the frames whose label and output are finite (an
  imported drive may lack a label on some frames: NaN, counted in `unlabelled_frames`).
- `whiteness_1pm_per_s`: steering whiteness, the RMS rate of change of the policy's curvature output,
  sqrt(mean_t ((κ_{t+1} − κ_t) / (t_{t+1} − t_t))²), 1/m/s, over consecutive frame pairs (the
  "whiteness" of the public VISTA evaluation of camera steering models, and the closed loop's
  `rms_curvature_rate_1pm_per_s`, so open- and closed-loop smoothness compare). Lower is smoother.
  `label_whiteness_1pm_per_s` is the same for the recorded label: the smoothness the human or expert
  driver had.

Each episode's figures carry their sums and counts (`sums`), so pooled figures over several episodes
(`pool_metrics`) are the same numbers one would get by concatenating the frames, not means of means.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

SUM_KEYS = ("n", "abs_error", "sq_error", "error", "rate_n", "rate_sq", "label_rate_n", "label_rate_sq")
"""The additive sums behind every figure (see `open_loop_metrics`)."""


def rate_squares(timestamp_s: np.ndarray, values: np.ndarray) -> tuple[int, float]:
    """(pairs, Σ rate²) of consecutive finite pairs with increasing time: the parts of an RMS rate.

    Args:
        timestamp_s: (T,) frame times, s.
        values: (T,) the signal (curvature, 1/m).

    Returns:
        The number of pairs and the sum of their squared rates, (1/m/s)².
    """
    t = np.asarray(timestamp_s, np.float64)
    v = np.asarray(values, np.float64)
    dt, dv = np.diff(t), np.diff(v)
    ok = np.isfinite(dv) & (dt > 0)
    rate = dv[ok] / dt[ok]
    return int(rate.size), float(np.sum(rate**2))


def open_loop_metrics(
    timestamp_s: np.ndarray, policy_1pm: np.ndarray, label_1pm: np.ndarray
) -> dict[str, Any]:
    """Error and smoothness of one replayed drive.

    Args:
        timestamp_s: (T,) frame times, s (strictly increasing in a valid recording).
        policy_1pm: (T,) the policy's curvature per frame, 1/m.
        label_1pm: (T,) the recorded label, 1/m (NaN where none).

    Returns:
        `frames`, `unlabelled_frames`, the figures of the module docstring and `sums` (`SUM_KEYS`).

    Example:
        >>> m = open_loop_metrics(np.array([0.0, 0.1, 0.2]), np.array([0.0, 0.1, 0.1]), np.zeros(3))
        >>> round(m["mae_1pm"], 4), round(m["rmse_1pm"], 4), round(m["whiteness_1pm_per_s"], 4)
        (0.0667, 0.0816, 0.7071)
    """
    policy = np.asarray(policy_1pm, np.float64)
    label = np.asarray(label_1pm, np.float64)
    if not (policy.shape == label.shape == np.shape(timestamp_s)) or policy.ndim != 1:
        raise ValueError(
            f"open_loop_metrics: timestamp_s, policy_1pm and label_1pm must be (T,) of one length, got "
            f"{np.shape(timestamp_s)}, {policy.shape}, {label.shape}"
        )
    error = (policy - label)[np.isfinite(policy) & np.isfinite(label)]
    rate_n, rate_sq = rate_squares(timestamp_s, policy)
    label_rate_n, label_rate_sq = rate_squares(timestamp_s, label)
    sums = {
        "n": int(error.size),
        "abs_error": float(np.sum(np.abs(error))),
        "sq_error": float(np.sum(error**2)),
        "error": float(np.sum(error)),
        "rate_n": rate_n,
        "rate_sq": rate_sq,
        "label_rate_n": label_rate_n,
        "label_rate_sq": label_rate_sq,
    }
    return {
        "frames": int(policy.size),
        "unlabelled_frames": int(np.count_nonzero(~np.isfinite(label))),
        **figures_from_sums(sums),
        "sums": sums,
    }


def figures_from_sums(sums: Mapping[str, float]) -> dict[str, float]:
    """MAE, RMSE, bias (1/m) and whiteness (1/m/s) from `SUM_KEYS` sums; NaN where a count is 0."""
    n, rate_n, label_rate_n = sums["n"], sums["rate_n"], sums["label_rate_n"]
    return {
        "mae_1pm": sums["abs_error"] / n if n else math.nan,
        "rmse_1pm": math.sqrt(sums["sq_error"] / n) if n else math.nan,
        "bias_1pm": sums["error"] / n if n else math.nan,
        "whiteness_1pm_per_s": math.sqrt(sums["rate_sq"] / rate_n) if rate_n else math.nan,
        "label_whiteness_1pm_per_s": math.sqrt(sums["label_rate_sq"] / label_rate_n)
        if label_rate_n
        else math.nan,
    }


def pool_metrics(episodes: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The figures over several episodes' frames together (from their `sums`), as one long drive.

    Args:
        episodes: `open_loop_metrics` results.
    """
    rows = list(episodes)
    sums = {k: sum(float(r["sums"][k]) for r in rows) for k in SUM_KEYS}
    return {
        "frames": int(sum(r["frames"] for r in rows)),
        "unlabelled_frames": int(sum(r["unlabelled_frames"] for r in rows)),
        **figures_from_sums(sums),
        "sums": sums,
    }
