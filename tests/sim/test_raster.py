"""Ground-polygon rasterising: near-plane clipping, visible runs of a loop, trimming instead of clipping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sim.embedded.pinhole import CameraConfig
from sim.embedded.raster import GroundProjector, clip_near, visible_runs


def reference_clip(polygon: np.ndarray, near: float) -> list[tuple[float, float, float]]:
    """Textbook Sutherland–Hodgman against z >= near, one vertex at a time."""
    out = []
    k = len(polygon)
    for i in range(k):
        p, q = polygon[i], polygon[(i + 1) % k]
        if p[2] >= near:
            out.append(tuple(p))
        if (p[2] >= near) != (q[2] >= near):
            t = (near - p[2]) / (q[2] - p[2])
            cut = p + t * (q - p)
            out.append((cut[0], cut[1], near))
    return out


@pytest.mark.parametrize("k", [3, 4, 8, 40])
def test_clip_near_matches_the_textbook_algorithm(k: int) -> None:
    rng = np.random.default_rng(k)
    polys = rng.uniform(-3, 3, (50, k, 3))
    polys[..., 2] = rng.uniform(-2, 4, (50, k))
    vertices, counts = clip_near(polys, 0.3)
    assert counts is not None and counts.sum() == len(vertices)
    start = 0
    for poly, n in zip(polys, counts.tolist()):
        expected = reference_clip(poly, 0.3)
        assert n == len(expected)
        np.testing.assert_allclose(vertices[start : start + n], np.array(expected).reshape(n, 3))
        assert np.all(vertices[start : start + n, 2] >= 0.3 - 1e-12)
        start += n


def test_clip_near_passes_polygons_in_front_through() -> None:
    polys = np.ones((4, 5, 3))
    out, counts = clip_near(polys, 0.3)
    assert out is polys and counts is None


def test_visible_runs_wrap_and_extend_by_one() -> None:
    def mask(n: int, on: list[int]) -> np.ndarray:
        m = np.zeros(n, dtype=bool)
        m[on] = True
        return m

    assert visible_runs(mask(10, [])) == []
    runs = visible_runs(mask(10, [3, 4, 5]))
    assert [r.tolist() for r in runs] == [[2, 3, 4, 5, 6]]
    runs = visible_runs(mask(10, [8, 9, 0, 1]))
    assert [r.tolist() for r in runs] == [[7, 8, 9, 0, 1, 2]]
    runs = visible_runs(mask(10, [0, 1, 2]))
    assert [r.tolist() for r in runs] == [[9, 0, 1, 2, 3]]
    runs = visible_runs(mask(12, [1, 2, 6, 7, 11]))
    assert sorted(r.tolist() for r in runs) == [[0, 1, 2, 3], [5, 6, 7, 8], [10, 11, 0]]
    runs = visible_runs(np.ones(5, dtype=bool))
    assert [r.tolist() for r in runs] == [[0, 1, 2, 3, 4, 0]]  # a closed ring


def strip(projector: GroundProjector, centre, normal, a, b):
    inner, outer = centre + a * normal, centre + b * normal
    poly = np.concatenate([inner, outer[:, ::-1]], axis=1)
    return projector.to_pixels(poly.real, poly.imag)


@pytest.mark.parametrize(
    ("heading_rad", "ahead_m", "trims"),
    [(0.0, 0.0, True), (0.3, 0.0, True), (-0.5, 0.0, True), (2.8, 0.0, True), (np.pi / 2, 2.0, False)],
)
def test_trimming_draws_what_clipping_draws(heading_rad: float, ahead_m: float, trims: bool) -> None:
    """Cutting the cross-sections behind the camera changes nothing inside the image; where it would
    (a road crossing just ahead), nothing is cut and the polygons are clipped."""
    cam = CameraConfig()
    projector = GroundProjector(cam)
    s = np.arange(-8.0, 60.0, 1.5)
    direction = np.exp(1j * heading_rad)
    centre = ahead_m + 0.5j + s * direction  # a straight road at heading_rad, through or near the camera
    normal = 1j * direction * np.ones_like(s)
    a = np.array([[-3.25] * len(s), [-2.25] * len(s)])
    b = -a
    trimmed = projector.trim_behind(centre, normal, a, b, 3.25)
    images = []
    for args in (trimmed, (centre, normal, a, b)):
        img = np.zeros((cam.height, cam.width), np.uint8)
        pts, strips = strip(projector, *args)
        for j, poly in zip(strips.tolist(), pts):
            cv2.fillPoly(img, [poly], 100 + 50 * j, cv2.LINE_8, 4)
        images.append(img)
    assert (images[0] != images[1]).mean() < 0.002
    assert images[1].any()
    if trims:
        assert len(trimmed[0]) < len(centre), "the cross-sections behind were cut"
    else:
        assert trimmed[0] is centre, "left for clipping"


def test_polygons_wholly_below_the_image_are_dropped() -> None:
    cam = CameraConfig()
    projector = GroundProjector(cam)
    below = np.array([[-1.0, 0.5, 1.0, 0.0]])  # forward offsets, all short of the image's bottom edge
    near = np.array([[-1.0, 0.5, 6.0, 0.0]])
    left = np.array([[0.0, -1.0, 0.0, 1.0]])
    pts, src = projector.to_pixels(np.concatenate([below, near]), np.concatenate([left, left]))
    assert src.tolist() == [1]
    assert len(pts) == 1


def test_no_polygons_project_to_none() -> None:
    pts, src = GroundProjector(CameraConfig()).to_pixels(np.zeros((0, 4)), np.zeros((0, 4)))
    assert len(pts) == 0 and len(src) == 0
