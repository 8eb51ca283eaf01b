"""Closed-loop metrics of one episode, from its telemetry and the safety driver's log.

- interventions: takeovers (the NCP paper's "crashes"); per km of distance driven.
- autonomy_pct: PilotNet's (1 − interventions · 6 s / elapsed s) · 100, floored at 0.
- mean / max |lateral offset| (m) and steering smoothness (RMS rate of the policy's curvature, 1/m/s)
  over the frames where the policy was in control.
- distance_m (progress along the route; teleports add nothing) and laps completed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

AUTONOMY_PENALTY_S = 6.0
"""Time charged per intervention in PilotNet's autonomy metric, s."""


def episode_metrics(
    telemetry: Mapping[str, np.ndarray], interventions: int, laps: int, penalty_s: float = AUTONOMY_PENALTY_S
) -> dict[str, Any]:
    """Metrics of one episode.

    Args:
        telemetry: per-frame arrays (T,): `timestamp_s`, `lateral_offset_m`, `progress_m`,
            `curvature_1pm` (the driver's command), `intervention` (safety driver in control).
        interventions: number of takeovers.
        laps: laps completed.
        penalty_s: time charged per intervention, s.
    """
    t = np.asarray(telemetry["timestamp_s"], np.float64)
    offset = np.abs(np.asarray(telemetry["lateral_offset_m"], np.float64))
    curvature = np.asarray(telemetry["curvature_1pm"], np.float64)
    engaged = ~np.asarray(telemetry["intervention"], bool)
    elapsed_s = float(t[-1] - t[0]) if len(t) > 1 else 0.0
    distance_m = float(telemetry["progress_m"][-1]) if len(t) else 0.0
    # Smoothness over consecutive frames both driven by the policy.
    both = engaged[1:] & engaged[:-1]
    dt = np.diff(t)
    rate = np.diff(curvature)[both] / dt[both] if both.any() else np.zeros(0)
    return {
        "interventions": int(interventions),
        "interventions_per_km": float(interventions / (distance_m / 1000.0))
        if distance_m > 0
        else float("nan"),
        "autonomy_pct": float(max(0.0, 1.0 - interventions * penalty_s / elapsed_s) * 100.0)
        if elapsed_s
        else 0.0,
        "mean_abs_offset_m": float(offset[engaged].mean()) if engaged.any() else float("nan"),
        "max_abs_offset_m": float(offset[engaged].max()) if engaged.any() else float("nan"),
        "rms_curvature_rate_1pm_per_s": float(np.sqrt(np.mean(rate**2))) if rate.size else 0.0,
        "distance_m": distance_m,
        "elapsed_s": elapsed_s,
        "laps": int(laps),
        "frames": int(len(t)),
    }
