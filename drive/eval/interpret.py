"""The NCP paper's interpretability analyses of a closed-loop drive (its Fig. 4–6).

- `pca`: principal components of the hidden-neuron activity over an episode; PC1's explained variance
  (the paper: 92 % NCP, 83 % CNN, 60 % CT-RNN, 51 % LSTM) and every frame's PC1 coordinate (the
  trajectory colouring).
- `max_lipschitz`: per neuron, the largest change between consecutive frames, max_t |x(t+1) − x(t)|
  (the paper's "local Lipschitz constant" of each neuron's trace; steps per control period).
- `saliency_ssim`: the paper's robustness-of-attention protocol: the same seed drives the same route
  with and without camera noise, and the saliency maps recorded in the two episodes are compared frame
  by frame (same frame index) with SSIM (`perception.saliency.ssim`, the standard constants).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.saliency import ssim


@dataclass(frozen=True)
class PCAResult:
    """Principal components of a (T, N) activity matrix.

    Attributes:
        explained_variance_ratio: (K,) fraction of the total variance per component, descending,
            K = min(T, N); sums to 1 (all zeros when the activity is constant).
        components: (K, N) unit principal axes (rows), sign fixed so each axis's largest |loading| is
            positive (deterministic output).
        projections: (T, K) coordinates of every frame on the axes (centred activity · axes).
        mean: (N,) mean activity.
    """

    explained_variance_ratio: np.ndarray
    components: np.ndarray
    projections: np.ndarray
    mean: np.ndarray

    @property
    def pc1_explained(self) -> float:
        """PC1's share of the variance, in [0, 1]."""
        return float(self.explained_variance_ratio[0])

    @property
    def pc1(self) -> np.ndarray:
        """(T,) every frame's PC1 coordinate."""
        return self.projections[:, 0]


def pca(hidden: np.ndarray) -> PCAResult:
    """PCA of hidden-neuron activity by SVD of the centred matrix.

    Args:
        hidden: (T, N) activity, T ≥ 2 frames, N ≥ 1 neurons.

    Returns:
        The components, explained-variance ratios and per-frame projections.

    Example:
        >>> t = np.linspace(0, 1, 50)
        >>> x = np.stack([t, 2 * t, -t], axis=1)  # one direction only
        >>> round(pca(x).pc1_explained, 6)
        1.0
    """
    x = np.asarray(hidden, np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"pca: hidden must be (T >= 2, N >= 1), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("pca: hidden contains NaN or infinity")
    mean = x.mean(axis=0)
    centred = x - mean
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    total = variance.sum()
    ratio = variance / total if total > 0 else np.zeros_like(variance)
    # SVD signs are arbitrary: make the largest loading of each axis positive.
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]
    return PCAResult(ratio, axes, centred @ axes.T, mean)


def max_lipschitz(hidden: np.ndarray, breaks: np.ndarray | list[int] | None = None) -> np.ndarray:
    """Per-neuron max local Lipschitz constant, max_t |x(t+1) − x(t)| (per control period).

    Args:
        hidden: (T, N) activity, T ≥ 2.
        breaks: frame indices t+1 whose step from t is not a continuous drive (the frame right after a
            safety-driver teleport: the camera jumps); those differences are left out.

    Returns:
        (N,) the largest absolute one-step change of each neuron (0 where no step is left).
    """
    x = np.asarray(hidden, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"max_lipschitz: hidden must be (T >= 2, N), got {x.shape}")
    steps = np.abs(np.diff(x, axis=0))  # row t is the change t -> t+1
    keep = np.ones(len(steps), bool)
    for frame in np.asarray(breaks if breaks is not None else [], int):
        if 1 <= frame < len(x):
            keep[frame - 1] = False
    if not keep.any():
        return np.zeros(x.shape[1])
    largest: np.ndarray = steps[keep].max(axis=0)
    return largest


def saliency_ssim(clean: np.ndarray, noisy: np.ndarray, frames: int | None = None) -> np.ndarray:
    """SSIM between clean and noisy saliency maps, frame by frame (same frame index, same seed).

    Args:
        clean: (T1, H, W) saliency of the clean episode, uint8 0–255 (as recorded) or float in [0, 1].
        noisy: (T2, H, W) saliency of the noisy episode with the same seed, same encoding.
        frames: compare at most this many leading frames (the paper: 200); None: all common frames.

    Returns:
        (T,) SSIM per frame, T = min(T1, T2, frames).
    """
    a, b = _as_unit(clean, "clean"), _as_unit(noisy, "noisy")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"saliency_ssim: map sizes differ: {a.shape[1:]} vs {b.shape[1:]}")
    count = min(len(a), len(b), frames if frames is not None else len(a))
    if count < 1:
        raise ValueError("saliency_ssim: no common frames to compare")
    return np.array([ssim(a[t], b[t]) for t in range(count)])


def _as_unit(maps: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(maps)
    if arr.ndim != 3:
        raise ValueError(f"saliency_ssim: {name} must be (T, H, W), got {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    return arr.astype(np.float64)
