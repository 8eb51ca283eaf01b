"""Where a policy looked during one episode, by every saliency method, and whether the maps are faithful.

The closed loop keeps, for the leading saliency window, what each step saw: the camera frame, its
standardised-space noise (when the noise lives there) and the state the step started from
(`CapturedStep`). After the drive, `episode_attention` recomputes every method's map of those steps
(the same numbers the loop would give: the step is a pure function of them), runs the deletion/insertion
test on evenly spaced frames, and compares the methods' maps with each other (Spearman rank correlation
per frame, averaged). Faithfulness intervals here are over frames (one model); a study's are over
training seeds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from policies.driving_policy import DrivingPolicy

BATCH = 8
"""Frames per saliency batch (integrated gradients runs 16 path points per frame)."""


@dataclass(frozen=True)
class CapturedStep:
    """What one control step saw.

    Attributes:
        image: (H, W, 3) uint8 camera frame (noise included when it is pixel noise).
        input_noise: (78, 200, 3) float32 standardised-space noise, or None.
        state: (1, state_size) float32 state the step started from.
    """

    image: np.ndarray
    input_noise: np.ndarray | None
    state: np.ndarray


@dataclass
class EpisodeAttention:
    """Every method's maps of the window and the JSON-able figures.

    Attributes:
        maps: method -> (K, 78, 200) uint8 maps (0–255) of the K captured steps.
        example: {"frame": k, "image": (78, 200, 3) uint8 network-size frame} of the middle step (figures).
        figures: {"methods", "faithfulness": {method: {...}}, "rank_correlation": {"a|b": float}}.
    """

    maps: dict[str, np.ndarray]
    example: dict[str, Any]
    figures: dict[str, Any]


def faithfulness_indices(window: int, frames: int) -> np.ndarray:
    """`frames` evenly spaced step indices in [0, window), distinct (fewer if the window is shorter).

    Example:
        >>> faithfulness_indices(200, 5).tolist()
        [0, 50, 100, 149, 199]
    """
    if window < 1 or frames < 1:
        return np.zeros(0, np.int64)
    return np.unique(np.linspace(0, window - 1, min(frames, window)).round().astype(np.int64))


def episode_attention(
    policy: DrivingPolicy,
    captured: list[CapturedStep],
    methods: list[str],
    faithfulness_frames: int,
    seed: int,
) -> EpisodeAttention:
    """Maps, faithfulness and cross-method rank correlation of one episode's captured steps.

    Args:
        policy: the policy that drove (eval mode).
        captured: the window's steps, in order (at least one).
        methods: saliency methods (`perception.saliency_methods.SALIENCY_METHODS`).
        faithfulness_frames: frames given the deletion/insertion test (0: none).
        seed: the test's random rankings (the episode seed: every policy gets the same rankings).
    """
    import torch

    from policies.policy_saliency import faithfulness, saliency_maps

    if not captured:
        raise ValueError("episode_attention: no captured steps")
    chosen = set(faithfulness_indices(len(captured), faithfulness_frames).tolist())
    float_maps: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    curves: dict[str, list[Any]] = {m: [] for m in methods}
    for start in range(0, len(captured), BATCH):
        steps = captured[start : start + BATCH]
        images = torch.from_numpy(np.stack([s.image for s in steps]))
        state = torch.from_numpy(np.concatenate([s.state for s in steps]))
        noise = _noise(steps)
        maps = saliency_maps(policy, images, state, methods, noise)
        for method, m in maps.items():
            float_maps[method].append(m.numpy())
        picked = [i for i in range(len(steps)) if start + i in chosen]
        if picked:
            index = torch.tensor(picked)
            sub_noise = noise[index] if noise is not None else None
            tested = faithfulness(
                policy, images[index], state[index], {k: v[index] for k, v in maps.items()}, sub_noise, seed
            )
            for method, c in tested.items():
                curves[method].append(c)
    stacked = {m: np.concatenate(v) for m, v in float_maps.items()}
    middle = len(captured) // 2
    with torch.no_grad():
        example = policy.preprocess(torch.from_numpy(captured[middle].image[None]))[0].numpy()
    figures = {
        "methods": list(methods),
        "frames": len(captured),
        "faithfulness": {m: _faithfulness_figures(c) for m, c in curves.items() if c},
        "rank_correlation": rank_correlations(stacked),
    }
    maps_u8 = {m: np.round(v * 255).astype(np.uint8) for m, v in stacked.items()}
    return EpisodeAttention(maps_u8, {"frame": middle, "image": example}, figures)


def _noise(steps: list[CapturedStep]) -> Any:
    import torch

    if all(s.input_noise is None for s in steps):
        return None
    return torch.from_numpy(
        np.stack(
            [
                s.input_noise if s.input_noise is not None else np.zeros((78, 200, 3), np.float32)
                for s in steps
            ]
        )
    )


def _faithfulness_figures(curves: list[Any]) -> dict[str, Any]:
    """Means over the tested frames, the gains with bootstrap intervals over frames, and the verdict."""
    from drive.study.stats import mean_interval

    scores: dict[str, np.ndarray] = {}
    for c in curves:
        for name, values in c.scores().items():
            scores[name] = np.concatenate([scores.get(name, np.zeros(0)), values])
    deletion = mean_interval(list(scores["deletion_gain"]))
    insertion = mean_interval(list(scores["insertion_gain"]))
    return {
        "frames": int(len(scores["deletion_gain"])),
        **{name: float(scores[name].mean()) for name in scores if name.endswith("_auc")},
        "deletion_gain": deletion.to_dict(),
        "insertion_gain": insertion.to_dict(),
        "better_than_random": bool(better_than_random(deletion.low, insertion.low)),
    }


def better_than_random(deletion_gain_low: float | None, insertion_gain_low: float | None) -> bool:
    """A map is better than random when the lower bound of its deletion or insertion gain is above 0
    (NaN / None bounds count as not shown)."""
    return any(v is not None and np.isfinite(v) and v > 0 for v in (deletion_gain_low, insertion_gain_low))


def rank_correlations(maps: dict[str, np.ndarray]) -> dict[str, float | None]:
    """Mean over frames of the Spearman rank correlation between two methods' maps, per pair `a|b`.

    Args:
        maps: method -> (K, H, W) maps of the same frames.

    Returns:
        {"a|b": mean ρ (None where a map is constant in every frame)}.
    """
    from scipy.stats import spearmanr

    out: dict[str, float | None] = {}
    for a, b in itertools.combinations(maps, 2):
        values = []
        for x, y in zip(maps[a], maps[b]):
            if np.ptp(x) > 0 and np.ptp(y) > 0:
                values.append(float(spearmanr(x.ravel(), y.ravel()).statistic))
        out[f"{a}|{b}"] = float(np.mean(values)) if values else None
    return out
