"""Procedural closed tracks: named presets and `seed-<n>` tracks for any seed.

A track's centre line is a star-shaped loop in polar form, a circle of radius R perturbed by a few
Fourier harmonics and optionally stretched along x:

    r(θ) = R · (1 + A · Σ_k c_k cos(k θ + φ_k)),   x = sx · r cos θ,   y = r sin θ.

Being star-shaped (r > 0) the centre line cannot cross itself. The harmonic amplitude A is the largest
that keeps |curvature| ≤ a target below `MAX_CURVATURE_1PM` (found by bisection on the analytic
curvature), so the loops are as twisty as the bound allows; a draw is kept only if it also turns both
ways (a right turn tighter than `MIN_REVERSE_CURVATURE_1PM`), is 300 m to 2 km long and keeps distant
parts of the road at least `MIN_CLEARANCE_M` apart. Draws come from a numpy Generator seeded by the
track seed, so a name always gives the same track. Points are resampled every ~0.5 m of arc length
by evaluating the exact curve at interpolated θ, then handed to `Track.from_centreline`.

Presets (fixed seeds and shape ranges):
    oval     convex ellipse, 125 m × 55 m semi-axes (587 m), left turns only, dashed lane edges: the
             easy one.
    country  1.27 km rural loop, gentle curves both ways (radius ≥ ~35 m), dashed lane edges.
    forest   830 m unmarked loop (like the paper's unmarked test track), 3.2 m lane, radius ≥ ~19 m.
    hills    1.40 km winding loop with the tightest curves (radius ≥ ~16 m), solid edge lines. The
             embedded world is flat: "hills" names the road's character, not elevation.
Seed tracks: radius 60-250 m, 2-4 harmonics, driven either way round (random), dashed.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim.tracks.track import Track

MAX_CURVATURE_1PM = 1.0 / 15.0
"""Bound on |curvature| of every generated centre line (radius ≥ 15 m), 1/m."""
MIN_REVERSE_CURVATURE_1PM = 1.0 / 250.0
"""Non-oval tracks must contain a right turn (against the loop's direction) at least this tight, 1/m."""
MIN_LENGTH_M = 300.0
MAX_LENGTH_M = 2000.0
MIN_CLEARANCE_M = 20.0
"""Minimum distance between parts of the centre line more than half a tight turn apart, m."""
SPACING_M = 0.5
"""Target distance between consecutive centre-line points, m."""

_DENSE_SAMPLES = 16384  # θ samples for curvature checks and arc-length tables
_MAX_ATTEMPTS = 200


@dataclass(frozen=True)
class _ShapeSpec:
    """Ranges a track's shape is drawn from (uniform), plus its surface parameters."""

    radius_m: tuple[float, float]
    stretch_x: tuple[float, float]
    harmonics: tuple[int, ...]  # Fourier orders k that may appear
    n_harmonics: tuple[int, int]  # how many of them (inclusive range)
    curvature_fraction: tuple[float, float]  # target max |κ| as a fraction of MAX_CURVATURE_1PM
    lane_width_m: float = 3.5
    shoulder_m: float = 0.5
    marking: str = "dashed"


_PRESETS: dict[str, tuple[int, _ShapeSpec]] = {
    "country": (
        11,
        _ShapeSpec((140.0, 170.0), (1.0, 1.3), (2, 3, 4, 5), (2, 3), (0.35, 0.45)),
    ),
    "forest": (
        23,
        _ShapeSpec(
            (95.0, 115.0), (1.0, 1.2), (2, 3, 4), (2, 3), (0.7, 0.85), lane_width_m=3.2, marking="none"
        ),
    ),
    "hills": (
        37,
        _ShapeSpec((160.0, 190.0), (1.0, 1.25), (3, 4, 5, 6, 7), (3, 4), (0.85, 0.95), marking="solid"),
    ),
}
_SEED_SPEC = _ShapeSpec((60.0, 250.0), (1.0, 1.5), (2, 3, 4, 5, 6, 7), (2, 4), (0.5, 0.95))
_OVAL_SEMI_AXES_M = (125.0, 55.0)
_SEED_NAME = re.compile(r"seed-(\d+)")


def list_tracks() -> tuple[str, ...]:
    """Names of the preset tracks; any `seed-<n>` (n ≥ 0) is also valid."""
    return ("oval", *_PRESETS)


def make_track(name_or_seed: str | int) -> Track:
    """Build a track by preset name, by `"seed-<n>"`, or by an integer seed n ≥ 0.

    Args:
        name_or_seed: one of `list_tracks()`, a string `"seed-<n>"`, or an int n.

    Returns:
        The track (cached: the same object for the same name; its arrays are read-only).

    Raises:
        ValueError: unknown name or negative seed; the message lists the valid names.
    """
    if isinstance(name_or_seed, bool) or not isinstance(name_or_seed, (str, int, np.integer)):
        raise ValueError(f"track must be a name or an int seed, got {name_or_seed!r}")
    if isinstance(name_or_seed, (int, np.integer)):
        if name_or_seed < 0:
            raise ValueError(f"track seed must be >= 0, got {name_or_seed}")
        name_or_seed = f"seed-{int(name_or_seed)}"
    return _make_track_cached(name_or_seed)


def validate_track_name(name: str) -> str:
    """Return `name` if `make_track` accepts it, else raise ValueError listing the valid names."""
    if isinstance(name, str) and (name in list_tracks() or _SEED_NAME.fullmatch(name)):
        return name
    raise ValueError(f"unknown track {name!r}; valid: {', '.join(list_tracks())} or 'seed-<n>' (n >= 0)")


@functools.lru_cache(maxsize=64)
def _make_track_cached(name: str) -> Track:
    validate_track_name(name)
    if name == "oval":
        track = _oval()
    elif name in _PRESETS:
        seed, spec = _PRESETS[name]
        track = _generate(name, spec, np.random.default_rng(seed), scenery_seed=seed, reversible=False)
    else:
        seed = int(_SEED_NAME.fullmatch(name).group(1))  # type: ignore[union-attr]
        track = _generate(name, _SEED_SPEC, np.random.default_rng(seed), scenery_seed=seed, reversible=True)
    for arr in (track.centre_xy_m, track.heading_rad, track.curvature_1pm, track.s_m):
        arr.flags.writeable = False
    return track


def _oval() -> Track:
    a_m, b_m = _OVAL_SEMI_AXES_M
    theta = np.linspace(0.0, 2 * math.pi, _DENSE_SAMPLES, endpoint=False)
    x_fn = lambda t: a_m * np.cos(t)  # noqa: E731
    y_fn = lambda t: b_m * np.sin(t)  # noqa: E731
    xy = _resample(theta, x_fn, y_fn)
    return Track.from_centreline("oval", xy, marking="dashed", scenery_seed=1)


class _PolarShape:
    """r(θ) = R (1 + A Σ c_k cos(kθ + φ_k)), x = sx r cos θ, y = r sin θ, with analytic derivatives."""

    def __init__(
        self, radius_m: float, stretch_x: float, orders: np.ndarray, coeffs: np.ndarray, phases: np.ndarray
    ) -> None:
        self.radius_m = radius_m
        self.stretch_x = stretch_x
        self.orders = orders.astype(np.float64)
        self.coeffs = coeffs
        self.phases = phases
        self.amplitude = 0.0

    def radius(self, theta: np.ndarray, derivative: int = 0) -> np.ndarray:
        arg = np.outer(theta, self.orders) + self.phases  # (T, K)
        k, c = self.orders, self.coeffs
        # Typed locals: numpy types arithmetic on dtype[Any] arrays as Any.
        if derivative == 0:
            r: np.ndarray = self.radius_m * (1.0 + self.amplitude * (np.cos(arg) @ c))
        elif derivative == 1:
            r = self.radius_m * self.amplitude * (-np.sin(arg) @ (c * k))
        else:
            r = self.radius_m * self.amplitude * (-np.cos(arg) @ (c * k * k))
        return r

    def x(self, theta: np.ndarray) -> np.ndarray:
        x: np.ndarray = self.stretch_x * self.radius(theta) * np.cos(theta)
        return x

    def y(self, theta: np.ndarray) -> np.ndarray:
        y: np.ndarray = self.radius(theta) * np.sin(theta)
        return y

    def curvature(self, theta: np.ndarray) -> np.ndarray:
        """Signed curvature for increasing θ (counter-clockwise), 1/m."""
        r, r1, r2 = (self.radius(theta, d) for d in (0, 1, 2))
        cos, sin, sx = np.cos(theta), np.sin(theta), self.stretch_x
        dx, dy = sx * (r1 * cos - r * sin), r1 * sin + r * cos
        ddx, ddy = sx * (r2 * cos - 2 * r1 * sin - r * cos), r2 * sin + 2 * r1 * cos - r * sin
        kappa_1pm: np.ndarray = (dx * ddy - dy * ddx) / np.power(dx * dx + dy * dy, 1.5)
        return kappa_1pm


def _generate(
    name: str, spec: _ShapeSpec, rng: np.random.Generator, *, scenery_seed: int, reversible: bool
) -> Track:
    theta = np.linspace(0.0, 2 * math.pi, _DENSE_SAMPLES, endpoint=False)
    for _ in range(_MAX_ATTEMPTS):
        n = int(rng.integers(spec.n_harmonics[0], spec.n_harmonics[1] + 1))
        orders = np.sort(rng.choice(np.array(spec.harmonics), size=n, replace=False))
        # Higher orders bend faster: damp them so no single harmonic dominates the curvature.
        coeffs = rng.uniform(0.5, 1.0, size=n) / orders.astype(np.float64) ** 2
        shape = _PolarShape(
            float(rng.uniform(*spec.radius_m)),
            float(rng.uniform(*spec.stretch_x)),
            orders,
            coeffs,
            rng.uniform(0.0, 2 * math.pi, size=n),
        )
        target = float(rng.uniform(*spec.curvature_fraction)) * MAX_CURVATURE_1PM
        clockwise = reversible and bool(rng.integers(0, 2))
        if not _fit_amplitude(shape, theta, target):
            continue
        kappa = shape.curvature(theta)
        if kappa.min() > -MIN_REVERSE_CURVATURE_1PM or np.any(shape.radius(theta) <= 0.0):
            continue
        xy = _resample(theta, shape.x, shape.y)
        length = float(np.sum(np.hypot(*(np.roll(xy, -1, axis=0) - xy).T)))
        if not MIN_LENGTH_M <= length <= MAX_LENGTH_M or _clearance_m(xy) < MIN_CLEARANCE_M:
            continue
        if clockwise:  # drive the loop the other way: right turns dominate
            xy = xy[::-1].copy()
        return Track.from_centreline(
            name,
            xy,
            lane_width_m=spec.lane_width_m,
            shoulder_m=spec.shoulder_m,
            marking=spec.marking,
            scenery_seed=scenery_seed,
        )
    raise RuntimeError(f"no valid track shape for {name!r} after {_MAX_ATTEMPTS} draws")  # pragma: no cover


def _fit_amplitude(shape: _PolarShape, theta: np.ndarray, target_1pm: float) -> bool:
    """Set shape.amplitude to the largest value (bisection) with max |κ| ≤ target; False if none."""
    shape.amplitude = 0.0
    if np.abs(shape.curvature(theta)).max() > target_1pm:  # the stretched circle alone bends too hard
        return False
    # r ≥ 0.3 R everywhere keeps the loop star-shaped with room to spare.
    lo, hi = 0.0, 0.7 / float(np.abs(shape.coeffs).sum())
    coarse = theta[:: max(1, len(theta) // 4096)]
    for _ in range(24):
        shape.amplitude = 0.5 * (lo + hi)
        ok = np.abs(shape.curvature(coarse)).max() <= target_1pm
        lo, hi = (shape.amplitude, hi) if ok else (lo, shape.amplitude)
    # The coarse grid may miss a sharp peak by a hair: shrink until the dense grid agrees.
    shape.amplitude = lo
    while lo > 0.0 and np.abs(shape.curvature(theta)).max() > target_1pm:
        lo *= 0.99
        shape.amplitude = lo
    return lo > 0.0


def _resample(
    theta: np.ndarray, x_fn: Callable[[np.ndarray], np.ndarray], y_fn: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Points of the curve every ~SPACING_M of arc length, (M, 2), evaluated exactly at interpolated θ."""
    x, y = x_fn(theta), y_fn(theta)
    seg = np.hypot(np.diff(x, append=x[0]), np.diff(y, append=y[0]))
    s_dense = np.concatenate([[0.0], np.cumsum(seg)])
    length = s_dense[-1]
    n = max(8, int(round(length / SPACING_M)))
    theta_closed = np.append(theta, 2 * math.pi)
    theta_s = np.interp(np.arange(n) * (length / n), s_dense, theta_closed)
    return np.stack([x_fn(theta_s), y_fn(theta_s)], axis=1)


def _clearance_m(xy: np.ndarray) -> float:
    """Smallest distance between points more than half a tightest turn apart along the loop, m."""
    step = 4  # ~2 m subsampling is enough for a 20 m bound
    pts = xy[::step]
    n = len(pts)
    seg = np.hypot(*(np.roll(pts, -1, axis=0) - pts).T)
    s = np.concatenate([[0.0], np.cumsum(seg)[:-1]])
    length = float(seg.sum())
    ds = np.abs(s[:, None] - s[None, :])
    ds = np.minimum(ds, length - ds)
    d = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
    far = ds > math.pi / MAX_CURVATURE_1PM
    return float(d[far].min()) if n and far.any() else math.inf
