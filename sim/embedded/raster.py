"""Rasterising ground polygons for the camera renderer: near-plane clipping and fixed-point projection.

Polygons on the ground are given as offsets from the camera in the car's frame (forward, left), often as
complex numbers forward + i·left. OpenCV fills them from int32 coordinates with `SHIFT` fractional bits.
"""

from __future__ import annotations

import math

import numpy as np

from sim.embedded.pinhole import CameraConfig

SHIFT = 4
"""Fractional bits of the polygon coordinates given to OpenCV (1/16 pixel)."""
ONE = 1 << SHIFT


def clip_near(points: np.ndarray, near: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Clip a batch of polygons against the plane z >= near (Sutherland–Hodgman, vectorised).

    Args:
        points: (P, K, 3) camera-frame polygons (x, y, z).
        near: the near plane's depth.

    Returns:
        (vertices, counts). When every vertex is in front: (`points` unchanged, None). Otherwise the
        clipped polygons' vertices back to back, (V, 3), and each polygon's vertex count, (P,) (0 for a
        polygon entirely behind the plane).
    """
    z = points[..., 2]
    inside = z >= near
    if inside.all():
        return points, None
    n, k = inside.shape
    following = np.arange(1, k + 1) % k
    crossing = inside != inside[:, following]
    # Output order: each kept vertex (key 2j), then the cut on the edge leaving it (key 2j + 1).
    flat = points.reshape(-1, 3)
    kept = np.flatnonzero(inside)
    edge = np.flatnonzero(crossing)
    a = flat[edge]
    b = flat[edge - edge % k + following[edge % k]]
    t = (near - a[:, 2]) / (b[:, 2] - a[:, 2])
    cut = a + t[:, None] * (b - a)
    cut[:, 2] = near
    order = np.argsort(np.concatenate([2 * kept, 2 * edge + 1]), kind="stable")
    vertices = np.concatenate([flat[kept], cut])[order]
    return vertices, inside.sum(axis=1) + crossing.sum(axis=1)


def visible_runs(visible: np.ndarray) -> list[np.ndarray]:
    """Index runs of a closed loop's mask, with wrap-around, each extended by one index at both ends."""
    idx = np.flatnonzero(visible)
    n = len(visible)
    if not idx.size:
        return []
    if idx.size == n:
        return [np.arange(n + 1) % n]
    first, last = int(idx[0]), int(idx[-1])
    if last - first + 1 == idx.size:  # one run (the usual case)
        run = np.arange(first - 1, last + 2)
        return [run % n if first == 0 or last == n - 1 else run]
    hidden = np.flatnonzero(~visible)
    if hidden[-1] - hidden[0] + 1 == hidden.size:  # one run through index 0
        return [np.arange(hidden[-1], hidden[0] + n + 1) % n]
    before = np.concatenate([visible[-1:], visible[:-1]])
    after = np.concatenate([visible[1:], visible[:1]])
    starts = np.flatnonzero(visible & ~before)
    ends = np.flatnonzero(visible & ~after)
    following = np.searchsorted(ends, starts)
    runs = []
    for start, j in zip(starts.tolist(), following.tolist()):
        end = ends[j] if j < len(ends) else ends[0] + n
        runs.append(np.arange(start - 1, end + 2) % n)
    return runs


class GroundProjector:
    """Projects ground polygons (car-frame offsets from the camera, m) into fixed-point pixels.

    Args:
        camera: the camera.
    """

    def __init__(self, camera: CameraConfig) -> None:
        self._near_m, self._height_m = camera.near_m, camera.height_m
        self._cp, self._sp = math.cos(camera.pitch_rad), math.sin(camera.pitch_rad)
        self._f = camera.focal_px
        self._cx, self._cy = camera.centre_px
        self.hidden_depth_m = camera.hidden_ground_depth_m()

    def to_pixels(
        self, forward: np.ndarray, left: np.ndarray
    ) -> tuple[list[np.ndarray] | np.ndarray, np.ndarray]:
        """Ground polygons in car-frame offsets from the camera -> near-clipped pixel polygons.

        Args:
            forward, left: (P, K) vertex offsets ahead of and left of the camera, m.

        Returns:
            (polygons, indices): int32 fixed-point (1/16 px) polygons for OpenCV, either a (P, K, 2)
            array or a list of (M_i, 2) arrays, and the (P',) indices of the input polygons they came from.
        """
        if not forward.size:
            return np.zeros(forward.shape + (2,), np.int32), np.arange(len(forward))
        zc = forward * self._cp + self._height_m * self._sp
        yc = self._height_m * self._cp - forward * self._sp
        xc = -left
        source = None
        counts = None
        if zc.min() < self._near_m:
            shown = zc.max(axis=1) >= self.hidden_depth_m  # the others lie wholly below the image
            if not shown.all():
                source = np.flatnonzero(shown)
                xc, yc, zc = xc[source], yc[source], zc[source]
            if zc.size and zc.min() < self._near_m:
                flat, counts = clip_near(np.stack([xc, yc, zc], axis=-1), self._near_m)
                xc, yc, zc = flat[:, 0], flat[:, 1], flat[:, 2]
        if source is None:
            source = np.arange(len(forward))
        scale = (self._f * ONE) / zc
        out = np.empty(zc.shape + (2,), np.int32)
        out[..., 0] = np.rint(self._cx * ONE + xc * scale)
        out[..., 1] = np.rint(self._cy * ONE + yc * scale)
        if counts is None:
            return out, source
        ends = np.cumsum(counts).tolist()
        keep = [i for i, n in enumerate(counts.tolist()) if n >= 3]
        return [out[ends[i] - counts[i] : ends[i]] for i in keep], source[keep]

    def trim_behind(
        self, centre: np.ndarray, normal: np.ndarray, a: np.ndarray, b: np.ndarray, max_offset_m: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Cut a run's cross-sections that reach behind the near plane at either end, when what is cut
        lies below the image anyway: saves clipping the polygons in the usual frame.

        Args:
            centre, normal: (k,) cross-section centres and left normals, forward + i·left, m.
            a, b: (S, k) inner and outer lateral offsets of the strips, m.
            max_offset_m: bound on |a| and |b|, m.

        Returns:
            The same four, ending in cross-sections interpolated to lie just in front of the near plane
            when that is safe; unchanged otherwise (the polygons are then clipped).
        """
        zc = centre.real * self._cp + self._height_m * self._sp
        spread = np.abs(normal.real) * (self._cp * max_offset_m)
        zmin = zc - spread
        behind = zmin < self._near_m
        n_behind = int(behind.sum())
        if not n_behind:
            return centre, normal, a, b
        k = len(zc)
        lead = k if behind.all() else int(np.argmin(behind))
        trail = k - 1 - int(np.flatnonzero(~behind)[-1]) if lead < k else 0
        if lead + trail != n_behind or lead + trail >= k:  # behind in the middle: clip instead
            return centre, normal, a, b
        zmax = zc + spread
        # Depths are linear along an interpolation, and |.| is convex: the bounds hold for every offset.
        cuts = []  # (cross-section replaced, its front neighbour, fraction towards the neighbour)
        if lead:
            cuts.append((lead - 1, lead, (self._near_m - zmin[lead - 1]) / (zmin[lead] - zmin[lead - 1])))
        if trail:
            m = k - trail
            cuts.append((m, m - 1, (self._near_m - zmin[m]) / (zmin[m - 1] - zmin[m])))
        for j, nb, t in cuts:
            dropped = zmax[: j + 1] if j < nb else zmax[j:]
            if max(float(dropped.max()), (1 - t) * zmax[j] + t * zmax[nb]) >= self.hidden_depth_m:
                return centre, normal, a, b
        lo, hi = max(lead - 1, 0), k - trail + 1 if trail else k
        centre, normal = centre[lo:hi].copy(), normal[lo:hi].copy()
        a, b = a[:, lo:hi].copy(), b[:, lo:hi].copy()
        for j, nb, t in cuts:
            j, nb = j - lo, nb - lo
            centre[j] += t * (centre[nb] - centre[j])
            normal[j] += t * (normal[nb] - normal[j])
            a[:, j] += t * (a[:, nb] - a[:, j])
            b[:, j] += t * (b[:, nb] - b[:, j])
        return centre, normal, a, b
