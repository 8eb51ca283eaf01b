"""Statistics of a study, where the unit of replication is the training seed.

Each trained model (policy × training seed) is evaluated on the same episodes (evaluation seeds,
conditions, noise streams) as every other model, and its per-episode figures are averaged into one value
per model and noise level. A policy's figure is then the mean of those values over its training seeds,
with a 95 % bootstrap confidence interval over the seeds; the difference between two policies is the
difference of the means, with an interval from resampling each policy's seeds independently (the
evaluation episodes are identical, so the difference carries no episode-to-episode noise of its own).

Intervals come from `scipy.stats.bootstrap` (BCa where it is defined, else percentile) with a fixed
random state, so the same study gives the same table twice. With 3-5 seeds a bootstrap interval is rough
(it cannot be wider than the seeds' own range): the report says so next to the tables.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
N_RESAMPLES = 9999
RANDOM_SEED = 20200  # fixed: identical intervals for identical inputs


@dataclass(frozen=True)
class Interval:
    """A mean with its confidence interval.

    Attributes:
        mean: the point estimate (mean over training seeds, or a difference of such means).
        low, high: the 95 % interval; equal to `mean` when every value is the same; NaN for n < 2.
        n: number of training seeds (for a difference: the smaller of the two).
    """

    mean: float
    low: float
    high: float
    n: int

    @property
    def resolved(self) -> bool:
        """The interval excludes zero (for a difference: the sign is known at 95 %)."""
        return bool(self.low > 0.0 or self.high < 0.0)

    def format(self, digits: int = 2) -> str:
        """`mean [low, high]`, or `mean (n=1)` without an interval."""
        if math.isnan(self.mean):
            return "–"
        if math.isnan(self.low):
            return f"{self.mean:.{digits}f} (n={self.n})"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def to_dict(self) -> dict[str, float | int | None]:
        return {"mean": _json(self.mean), "low": _json(self.low), "high": _json(self.high), "n": self.n}


def mean_interval(values: Sequence[float]) -> Interval:
    """Mean of `values` (one per training seed, NaNs dropped) with its 95 % bootstrap interval."""
    x = _finite(values)
    if x.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if x.size < 2:
        return Interval(mean, math.nan, math.nan, int(x.size))
    if np.all(x == x[0]):
        return Interval(mean, mean, mean, int(x.size))
    low, high = _bootstrap((x,), _mean)
    return Interval(mean, low, high, int(x.size))


def difference_interval(a: Sequence[float], b: Sequence[float]) -> Interval:
    """mean(a) − mean(b) with a 95 % bootstrap interval; a and b are resampled independently (each is
    one policy's per-training-seed values)."""
    xa, xb = _finite(a), _finite(b)
    if xa.size == 0 or xb.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    diff = float(xa.mean() - xb.mean())
    n = int(min(xa.size, xb.size))
    if n < 2:
        return Interval(diff, math.nan, math.nan, n)
    if np.all(xa == xa[0]) and np.all(xb == xb[0]):
        return Interval(diff, diff, diff, n)
    low, high = _bootstrap((xa, xb), _mean_difference)
    return Interval(diff, low, high, n)


def _json(value: float) -> float | None:
    """`value` as a float, NaN as None (JSON has no NaN)."""
    return None if math.isnan(value) else float(value)


def _finite(values: Sequence[float]) -> np.ndarray:
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    return x[np.isfinite(x)]


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    means: np.ndarray = np.mean(x, axis=axis)
    return means


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    differences: np.ndarray = np.mean(a, axis=axis) - np.mean(b, axis=axis)
    return differences


def _bootstrap(samples: tuple[np.ndarray, ...], statistic: Callable[..., np.ndarray]) -> tuple[float, float]:
    """(low, high) of the 95 % interval: BCa, or percentile where BCa is undefined (tiny samples)."""
    from scipy.stats import bootstrap

    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns about degenerate BCa; we fall back instead
            result = bootstrap(
                samples,
                statistic,
                n_resamples=N_RESAMPLES,
                confidence_level=CONFIDENCE,
                method=method,
                vectorized=True,
                paired=False,
                random_state=np.random.default_rng(RANDOM_SEED),
            )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return low, high
    return math.nan, math.nan
