"""The camera renderer: geometry seen from known poses, determinism, conditions, robustness."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.conditions import CONDITIONS
from sim.embedded.camera import CameraConfig, Renderer, project_points
from sim.embedded.scenery import DASH_PERIOD_M
from sim.tracks.track import Track
from sim.types import Pose

RADIUS_M = 50.0  # bend radius of the stadium; its bottom straight runs east along y = -RADIUS_M
STRAIGHT_M = 300.0


def stadium(marking: str = "dashed", scenery_seed: int = 3) -> Track:
    """Two 300 m straights joined by half circles, counter-clockwise, points ~1 m apart."""
    n_s, n_c = int(STRAIGHT_M), int(math.pi * RADIUS_M)
    s = np.arange(n_s) - STRAIGHT_M / 2
    a = math.pi * np.arange(n_c) / n_c
    pts = np.concatenate(
        [
            np.stack([s, np.full(n_s, -RADIUS_M)], 1),
            np.stack([STRAIGHT_M / 2 + RADIUS_M * np.sin(a), -RADIUS_M * np.cos(a)], 1),
            np.stack([-s, np.full(n_s, RADIUS_M)], 1),
            np.stack([-STRAIGHT_M / 2 - RADIUS_M * np.sin(a), RADIUS_M * np.cos(a)], 1),
        ]
    )
    return Track.from_centreline("stadium", pts, marking=marking, scenery_seed=scenery_seed)


def circle(radius_m: float = 30.0) -> Track:
    n = int(2 * math.pi * radius_m)
    a = 2 * math.pi * np.arange(n) / n
    return Track.from_centreline("circle", radius_m * np.stack([np.cos(a), np.sin(a)], 1))


@pytest.fixture(scope="module")
def track() -> Track:
    return stadium()


# A car centred on the bottom straight, heading east, with 200 m of straight ahead.
CENTRED = Pose(-100.0, -RADIUS_M, 0.0)


def road_mask(img: np.ndarray, camera: CameraConfig, tol: int = 6) -> np.ndarray:
    """(H, W) bool: ground pixels the colour of the lane centre on their row (the asphalt; haze varies
    by row, so each row has its own reference). Rows above the horizon (+3) are False."""
    mask = np.zeros(img.shape[:2], dtype=bool)
    start = camera.sky_rows + 3
    centre = img[start:, camera.width // 2].astype(int)
    mask[start:] = (np.abs(img[start:].astype(int) - centre[:, None, :]) <= tol).all(axis=2)
    return mask


def centroid_u(mask: np.ndarray) -> float:
    return float(np.nonzero(mask)[1].mean())


def white_pixels(img: np.ndarray, camera: CameraConfig) -> np.ndarray:
    return (img[camera.sky_rows :] >= 200).all(axis=2)


# --- camera model ---------------------------------------------------------------------------------


def test_default_camera_puts_the_horizon_near_the_top_third() -> None:
    cam = CameraConfig()
    assert (cam.width, cam.height) == (200, 78)
    assert abs(cam.horizon_row - cam.height / 3) < 2.0
    assert cam.sky_rows == math.floor(cam.horizon_row) + 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"width": 0}, "width"),
        ({"height": 7.5}, "height"),
        ({"fov_deg": 200.0}, "fov_deg"),
        ({"height_m": -1.0}, "height_m"),
        ({"pitch_rad": 2.0}, "pitch_rad"),
        ({"near_m": 0.0}, "near_m"),
    ],
)
def test_camera_config_rejects_bad_values_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        CameraConfig(**kwargs)


def test_project_points_matches_the_pinhole_formula() -> None:
    cam = CameraConfig()
    pose = Pose(10.0, 5.0, 0.7)
    c, s = math.cos(pose.yaw_rad), math.sin(pose.yaw_rad)
    x_cam, y_cam = pose.x_m + cam.forward_m * c, pose.y_m + cam.forward_m * s
    d = np.array([2.0, 10.0, 40.0])
    ahead = np.stack([x_cam + d * c, y_cam + d * s], 1)
    u, v, valid = project_points(cam, pose, ahead)
    cp, sp, h = math.cos(cam.pitch_rad), math.sin(cam.pitch_rad), cam.height_m
    cx, cy = cam.centre_px
    assert valid.all()
    np.testing.assert_allclose(u, cx, atol=1e-9)
    np.testing.assert_allclose(v, cy + cam.focal_px * (h * cp - d * sp) / (d * cp + h * sp))
    assert np.all(np.diff(v) < 0)  # farther is higher in the image

    # Far away at eye level, or far along the ground: the horizon.
    far = np.array([[x_cam + 1e6 * c, y_cam + 1e6 * s, h], [x_cam + 1e6 * c, y_cam + 1e6 * s, 0.0]])
    u, v, _ = project_points(cam, pose, far)
    np.testing.assert_allclose(v, cam.horizon_row, atol=1e-3)

    # Left of the car: left in the image; behind the camera: not valid.
    left = np.array([[x_cam + 10 * c - 2 * s, y_cam + 10 * s + 2 * c], [x_cam - 5 * c, y_cam - 5 * s]])
    u, v, valid = project_points(cam, pose, left)
    assert valid.tolist() == [True, False]
    assert u[0] < cx and np.isnan(u[1]) and np.isnan(v[1])


def test_project_points_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="points_xy_m"):
        project_points(CameraConfig(), CENTRED, np.zeros((3, 4)))


def test_projected_road_edge_lands_on_the_rendered_edge(track: Track) -> None:
    cam = CameraConfig()
    img = Renderer(track, cam, "summer", scenery=False).render(CENTRED)
    x_cam = CENTRED.x_m + cam.forward_m
    hw = track.road_half_width_m
    for d in (6.0, 12.0):
        # The edge is a straight line in the image: find its column at a pixel row's centre.
        edge = np.array([[x_cam + d, -RADIUS_M + hw], [x_cam + d + 1.0, -RADIUS_M + hw]])
        u, v, _ = project_points(cam, CENTRED, edge)
        row = round(float(v[0]))
        col = u[0] + (row - v[0]) * (u[1] - u[0]) / (v[1] - v[0])
        # OpenCV's LINE_8 fill covers every pixel an edge touches: up to a pixel beyond the true edge.
        verge, road = img[row, math.floor(col - 2.0)], img[row, math.ceil(col + 1.0)]
        asphalt = img[row, cam.width // 2].astype(int)  # haze varies a little along a row
        assert np.abs(road - asphalt).max() <= 3, "inside the edge is asphalt"
        assert np.abs(verge - asphalt).max() > 15, "outside the edge is not"


# --- what the car sees ---------------------------------------------------------------------------


def test_centred_car_on_a_straight_sees_a_symmetric_road(track: Track) -> None:
    cam = CameraConfig()
    img = Renderer(track, cam, "summer", scenery=False).render(CENTRED)
    mask = road_mask(img, cam)
    assert mask[-1].sum() > cam.width / 2, "the road fills the bottom of the view"
    agree = (mask == mask[:, ::-1]).mean()
    assert agree > 0.99
    assert abs(centroid_u(mask) - cam.centre_px[0]) < 1.0


@pytest.mark.parametrize("offset_m", [0.8, -0.8])
def test_lateral_offset_moves_the_road_the_other_way(track: Track, offset_m: float) -> None:
    cam = CameraConfig()
    renderer = Renderer(track, cam, "summer", scenery=False)
    shifted = Pose(CENTRED.x_m, CENTRED.y_m + offset_m, 0.0)  # +y is left of an east-bound car
    u = centroid_u(road_mask(renderer.render(shifted), cam))
    # Left of centre (positive offset) sees the road to the right, and vice versa.
    assert np.sign(u - cam.centre_px[0]) == np.sign(offset_m)
    assert abs(u - cam.centre_px[0]) > 5


def test_heading_left_moves_the_road_right(track: Track) -> None:
    cam = CameraConfig()
    renderer = Renderer(track, cam, "summer", scenery=False)
    u_left = centroid_u(road_mask(renderer.render(Pose(CENTRED.x_m, CENTRED.y_m, 0.1)), cam))
    u_right = centroid_u(road_mask(renderer.render(Pose(CENTRED.x_m, CENTRED.y_m, -0.1)), cam))
    assert u_left > cam.centre_px[0] + 5 > cam.centre_px[0] - 5 > u_right


def test_dashes_are_fixed_on_the_road(track: Track) -> None:
    """Driving one dash period on reproduces the markings; half a period moves them."""
    cam = CameraConfig()
    renderer = Renderer(track, cam, "summer", scenery=False)
    period = track.length_m / round(track.length_m / DASH_PERIOD_M)
    marks = [
        white_pixels(renderer.render(Pose(CENTRED.x_m + dx, CENTRED.y_m, 0.0)), cam)
        for dx in (0.0, period, period / 2)
    ]

    def iou(a: np.ndarray, b: np.ndarray) -> float:
        return (a & b).sum() / max((a | b).sum(), 1)

    assert marks[0].sum() > 20
    assert iou(marks[0], marks[1]) > 0.9
    assert iou(marks[0], marks[2]) < 0.5


@pytest.mark.parametrize("marking", ["solid", "dashed", "none"])
def test_marking_none_draws_no_lines(marking: str) -> None:
    cam = CameraConfig()
    img = Renderer(stadium(marking=marking), cam, "summer", scenery=False).render(CENTRED)
    count = white_pixels(img, cam).sum()
    if marking == "none":
        assert count == 0
    else:
        assert count > 20


def test_render_is_deterministic(track: Track) -> None:
    poses = [CENTRED, Pose(160.0, -20.0, 1.2), Pose(0.0, RADIUS_M + 0.5, math.pi)]
    for condition in CONDITIONS:
        a = Renderer(track, CameraConfig(), condition, seed=4)
        b = Renderer(track, CameraConfig(), condition, seed=4)
        for pose in poses:
            first = a.render(pose)
            assert np.array_equal(first, b.render(pose))
            assert np.array_equal(first, a.render(pose))


def test_seed_varies_details_but_not_the_road(track: Track) -> None:
    cam = CameraConfig()
    a = Renderer(track, cam, "summer", seed=1, scenery=False).render(CENTRED)
    b = Renderer(track, cam, "summer", seed=2, scenery=False).render(CENTRED)
    assert not np.array_equal(a[: cam.sky_rows], b[: cam.sky_rows])  # the clouds
    assert np.array_equal(a[cam.sky_rows :], b[cam.sky_rows :])  # the ground and the road
    rain = [Renderer(track, cam, "rain", seed=s).render(CENTRED) for s in (1, 2)]
    assert not np.array_equal(rain[0][cam.sky_rows :], rain[1][cam.sky_rows :])  # the rain streaks


def test_trees_are_drawn(track: Track) -> None:
    cam = CameraConfig()
    with_trees = Renderer(track, cam, "summer").render(CENTRED)
    without = Renderer(track, cam, "summer", scenery=False).render(CENTRED)
    assert (with_trees != without).any(axis=2).mean() > 0.02


def test_every_condition_looks_different(track: Track) -> None:
    cam = CameraConfig()
    images = {c: Renderer(track, cam, c, seed=0).render(CENTRED) for c in CONDITIONS}
    means = {c: img.reshape(-1, 3).mean(0) for c, img in images.items()}
    for i, a in enumerate(CONDITIONS):
        for b in CONDITIONS[i + 1 :]:
            assert np.linalg.norm(means[a] - means[b]) > 10, (a, b)
    assert means["night"].mean() < 0.4 * means["summer"].mean()
    # Far grass at the left edge, below the horizon: snow in winter.
    bare = {c: Renderer(track, cam, c, scenery=False).render(CENTRED) for c in ("summer", "winter")}
    rows = slice(cam.sky_rows + 3, cam.sky_rows + 12)
    assert bare["winter"][rows, :15].mean() > bare["summer"][rows, :15].mean() + 60


@pytest.mark.parametrize(("height", "width"), [(78, 200), (160, 320), (66, 200)])
def test_resolutions(track: Track, height: int, width: int) -> None:
    cam = CameraConfig(width=width, height=height)
    img = Renderer(track, cam, "dusk").render(CENTRED)
    assert img.shape == (height, width, 3) and img.dtype == np.uint8
    mask = road_mask(Renderer(track, cam, "summer", scenery=False).render(CENTRED), cam)
    assert abs(centroid_u(mask) - cam.centre_px[0]) < 0.01 * width


def test_poses_without_road_in_view_render_the_background(track: Track) -> None:
    cam = CameraConfig()
    elsewhere = Track.from_centreline("far", stadium().centre_xy_m + 1e5)
    for pose in (Pose(5000.0, 5000.0, 0.3), Pose(0.0, -RADIUS_M - 20.0, -math.pi / 2)):
        for condition in CONDITIONS:
            img = Renderer(track, cam, condition, scenery=False).render(pose)
            background = Renderer(elsewhere, cam, condition, scenery=False).render(pose)
            assert np.array_equal(img, background), condition


def test_crossing_the_road_at_right_angles(track: Track) -> None:
    """Facing across the road, its strips reach far behind the camera on both sides (clipped)."""
    cam = CameraConfig()
    across = Pose(0.0, -RADIUS_M - 6.0, math.pi / 2)  # 6 m south of the straight, facing north
    for condition in CONDITIONS:
        assert Renderer(track, cam, condition).render(across).shape == (78, 200, 3)
    img = Renderer(stadium(marking="none"), cam, "summer", scenery=False).render(across)
    ground = img[cam.sky_rows + 2 :].astype(int)
    # The road is a horizontal band: every row looks the same across the image (up to haze).
    assert np.abs(ground - ground[:, ::-1]).max() <= 3
    asphalt = (np.abs(ground - ground[:, cam.width // 2 : cam.width // 2 + 1]) <= 3).all(axis=2)
    assert asphalt.all(axis=1).any(), "some rows are road from edge to edge"


def test_small_circle_and_views_from_inside(track: Track) -> None:
    ring = circle(30.0)
    cam = CameraConfig()
    on_track = Renderer(ring, cam, "summer", scenery=False).render(Pose(30.0, 0.0, math.pi / 2))
    assert road_mask(on_track, cam)[-1].sum() > cam.width / 2
    # From the middle, looking at the whole ring (one closed run of the loop).
    inside = Renderer(ring, cam, "night").render(Pose(0.0, 0.0, 0.0))
    assert inside.shape == (78, 200, 3)


def test_any_pose_renders(track: Track) -> None:
    """Random poses on, beside and across the road, any heading: clipping and culling hold up."""
    rng = np.random.default_rng(0)
    renderers = [Renderer(track, CameraConfig(), c) for c in CONDITIONS]
    for _ in range(60):
        i = int(rng.integers(len(track.centre_xy_m)))
        x, y = track.centre_xy_m[i] + rng.normal(0, 6, 2)
        pose = Pose(float(x), float(y), float(rng.uniform(-math.pi, math.pi)))
        for renderer in renderers:
            img = renderer.render(pose)
            assert img.shape == (78, 200, 3) and img.dtype == np.uint8


def test_bad_condition_name_lists_the_valid_ones(track: Track) -> None:
    with pytest.raises(ValueError, match="summer, winter, rain, night, dusk"):
        Renderer(track, CameraConfig(), "fog")
