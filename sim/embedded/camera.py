"""The embedded simulator's first-person camera renderer (numpy + OpenCV, no game engine).

Per frame the renderer transforms the road's precomputed world geometry (edge strips, marking dashes,
ground patches, tree shadows, trees) into the camera frame, clips it at a near plane, projects it and
fills polygons; sky, lighting, haze and weather are precomputed per condition
(`sim.embedded.condition_layers.build_layers`) and applied with a few whole-image uint8 operations.
No per-pixel Python: well over 1,000 frames/s at 78×200 on one core (see bench/render.py).

The camera model (`CameraConfig`, `project_points`) lives in `sim.embedded.pinhole` and is re-exported here.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sim.conditions import get_condition, haze_fraction, illumination, sun_azimuth_for_seed
from sim.embedded.condition_layers import LIGHT_SCALE, build_layers
from sim.embedded.pinhole import CameraConfig, camera_position_m, project_points
from sim.embedded.raster import ONE, SHIFT, GroundProjector, visible_runs
from sim.embedded.scenery import (
    MARKING_WIDTH_M,
    TREE_KIND_CONIFER,
    VERGE_WIDTH_M,
    GroundPatches,
    RoadGeometry,
    Trees,
    dash_polygons,
    edge_wobble,
    tree_shadow_polygons,
)
from sim.embedded.scenery_cache import track_scenery
from sim.tracks.track import Track
from sim.types import Pose

__all__ = ["CameraConfig", "Renderer", "camera_position_m", "project_points"]

_ROAD_STRIP = 1  # index of the asphalt among the strips (after the verge)
_SHADE_ONE = 128  # the shade layer stores ground brightness x 128: patches may brighten a little
_PATCH_VIEW_M = 70.0  # ground patches are drawn this far ahead


class Renderer:
    """Renders the camera's view of a track under one condition.

    Args:
        track: the track (centre line, widths, marking, scenery seed).
        camera: the camera (default `CameraConfig()`).
        condition: one of `sim.conditions.CONDITIONS`.
        seed: varies small things only (cloud pattern, the sun's azimuth and so shadow directions,
            stars, precipitation patterns); trees come from `track.scenery_seed`.
        scenery: draw the roadside trees, their shadows and the patches on the ground (False: road, sky
            and plain ground only).

    The same (track, camera, condition, seed, pose) always gives the same image. Construction
    precomputes everything (a few to tens of milliseconds); `render` is the per-frame cost.

    Raises:
        ValueError: unknown condition (the message lists the valid ones).
    """

    def __init__(
        self,
        track: Track,
        camera: CameraConfig | None = None,
        condition: str = "summer",
        seed: int = 0,
        *,
        scenery: bool = True,
    ) -> None:
        self.track = track
        self.camera = camera = camera if camera is not None else CameraConfig()
        self.condition = cond = get_condition(condition)
        self.seed = int(seed)
        self._layers = build_layers(cond, camera, self.seed)
        self._pano_w = self._layers.sky_pano.shape[1] - camera.width
        self._f = camera.focal_px
        self._cx, self._cy = camera.centre_px
        self._cp, self._sp = math.cos(camera.pitch_rad), math.sin(camera.pitch_rad)
        self._tan_half = math.tan(math.radians(camera.fov_deg) / 2)
        geometry, patches, trees = track_scenery(track)
        self._centre = geometry.centre_xy_m @ np.array([1, 1j])
        self._normal = geometry.normal_xy @ np.array([1, 1j])
        # Decimation level of each cross-section: 2 where the index is a multiple of 4, 1 of 2.
        index = np.arange(len(self._centre))
        self._level = (index % 2 == 0).astype(np.int8) + (index % 4 == 0)
        self._behind_m = track.road_half_width_m + VERGE_WIDTH_M + 1.0
        self._build_strips(track, geometry)
        self._max_offset_m = float(max(np.abs(self._strip_in).max(), np.abs(self._strip_out).max()))
        self._projector = GroundProjector(camera)
        self._wedge_margin_m = self._max_offset_m + 4 * geometry.spacing_m + 2.0
        if not scenery:
            patches, trees = GroundPatches.none(), Trees.none()
        self._build_objects(track, geometry, patches, trees)
        self._mask = np.zeros((camera.height, camera.width), np.uint8)
        self._shade = np.empty((camera.height, camera.width, 3), np.uint8)

    def _build_strips(self, track: Track, geometry: RoadGeometry) -> None:
        """Lateral offsets (S, N) of the strips along the road, bottom to top, and their colours."""
        cond, n = self.condition, len(geometry.s_m)
        hw, half_lane, half_mark = track.road_half_width_m, 0.5 * track.lane_width_m, 0.5 * MARKING_WIDTH_M
        # Offsets are floats, or (N,) arrays for the ragged slush; colours are RGB tuples.
        strips: list[tuple[float | np.ndarray, float | np.ndarray, tuple[int, ...]]] = [
            (-hw - VERGE_WIDTH_M, hw + VERGE_WIDTH_M, cond.verge),
            (-hw, hw, cond.road),
        ]
        if track.marking == "solid":
            for side in (1.0, -1.0):
                strips.append((side * half_lane - half_mark, side * half_lane + half_mark, cond.marking))
        self._n_under_dashes = len(strips)
        if cond.snow:  # slush reaching a ragged 0.05-0.75 m in from each road edge, over the lines
            slush = tuple(int(0.8 * v + 0.2 * r) for v, r in zip(cond.verge, cond.road))
            reach_l = 0.05 + 0.7 * edge_wobble(geometry, track.scenery_seed)
            reach_r = 0.05 + 0.7 * edge_wobble(geometry, track.scenery_seed + 1)
            strips.append((hw - reach_l, hw + 0.05, slush))
            strips.append((-hw - 0.05, -hw + reach_r, slush))
        self._strip_in = np.stack([np.broadcast_to(np.asarray(a, float), (n,)) for a, _, _ in strips])
        self._strip_out = np.stack([np.broadcast_to(np.asarray(b, float), (n,)) for _, b, _ in strips])
        self._strip_colours = [tuple(int(c) for c in colour) for _, _, colour in strips]
        self._marking_colour = tuple(int(c) for c in cond.marking)

    def _build_objects(
        self, track: Track, geometry: RoadGeometry, patches: GroundPatches, trees: Trees
    ) -> None:
        """Dashes, ground patches, tree shadows and trees, each with an anchor point, a radius and a view
        distance for culling; the anchors of the four kinds lie back to back in that order."""
        cond, to_c = self.condition, np.array([1, 1j])
        far = self.camera.far_m
        anchors, radii, reach = [], [], []
        self._dashes = np.zeros((0, 8), complex)
        if track.marking == "dashed":
            half_lane = 0.5 * track.lane_width_m
            left, left_c = dash_polygons(geometry, half_lane)
            right, right_c = dash_polygons(geometry, -half_lane)
            self._dashes = np.concatenate([left, right]) @ to_c
            anchors.append(np.concatenate([left_c, right_c]) @ to_c)
            radii.append(np.full(len(self._dashes), 2.0))
            reach.append(np.full(len(self._dashes), far))
        self._patches = patches.polygons_xy_m @ to_c
        self._patch_colours = [(v, v, v) for v in np.rint(patches.factor * _SHADE_ONE).astype(int).tolist()]
        centres = self._patches.mean(axis=1)
        anchors.append(centres)
        radii.append(np.abs(self._patches - centres[:, None]).max(axis=1, initial=0.0))
        reach.append(np.full(len(centres), min(far, _PATCH_VIEW_M)))  # beyond: sub-pixel and hazy
        self._trees = trees
        self._shadows = np.zeros((0, 3), complex)
        if cond.shadow_rgb is not None and len(trees):
            sun_az = sun_azimuth_for_seed(cond, self.seed)
            polys = tree_shadow_polygons(trees, sun_az, cond.shadow_elevation_rad)
            self._shadows = polys @ to_c
            centres = self._shadows.mean(axis=1)
            anchors.append(centres)
            radii.append(np.abs(self._shadows - centres[:, None]).max(axis=1))
            reach.append(np.full(len(centres), far))
            self._shadow_colour = tuple(int(_SHADE_ONE * s) for s in cond.shadow_rgb)
        anchors.append(trees.base_xy_m @ to_c)
        radii.append(trees.crown_radius_m + 1.0)
        reach.append(np.full(len(trees), far))
        self._anchors = np.concatenate(anchors)
        self._anchor_radius = np.concatenate(radii)
        self._anchor_reach = np.concatenate(reach)
        self._splits = np.cumsum([len(self._dashes), len(self._patches), len(self._shadows)])
        self._starts = [0, *self._splits.tolist()]  # each kind's first anchor
        conifer = trees.kind == TREE_KIND_CONIFER
        crown = np.where(conifer[:, None], cond.conifer, cond.foliage) * trees.tint[:, None]
        top = crown * 1.3 + 12.0  # the lit side of a crown, the upper tier of a conifer
        if cond.snow:
            top = np.where(conifer[:, None], 0.45 * crown + 0.55 * np.asarray(cond.verge), top)
        colours = np.stack([crown, top, np.asarray(cond.trunk) * trees.tint[:, None]], axis=1)
        self._tree_lit = colours * np.asarray(cond.light_rgb)  # (T, 3 parts, RGB) under the condition's light
        self._haze_rgb = np.asarray(cond.haze_rgb, dtype=np.float64)
        r, base = trees.crown_radius_m, trees.crown_base_m
        self._tree_up = np.stack([np.zeros_like(r), base, base + r, trees.height_m], 1) - self.camera.height_m
        self._tree_sizes = np.stack([0.5 * trees.trunk_width_m, r], 1)  # trunk half width, crown radius

    def render(self, pose: Pose) -> np.ndarray:
        """Render the view from a car pose.

        Args:
            pose: the car's pose (world frame, m, rad).

        Returns:
            (H, W, 3) uint8 RGB image.
        """
        cam, lay = self.camera, self._layers
        h, w, r0 = cam.height, cam.width, lay.sky_rows
        c, s = math.cos(pose.yaw_rad), math.sin(pose.yaw_rad)
        origin = complex(pose.x_m + cam.forward_m * c, pose.y_m + cam.forward_m * s)
        rot = complex(c, -s)  # world offsets times rot = (forward + i·left) in the car's frame
        img = np.empty((h, w, 3), np.uint8)
        p0 = int(round(-pose.yaw_rad * lay.px_per_rad - self._cx)) % self._pano_w
        if r0 > 0:
            img[:r0] = lay.sky_pano[:, p0 : p0 + w]
        rel = (self._anchors - origin) * rot
        dashes, patches, shadows, trees = self._cull(rel)
        if r0 < h:
            img[r0:] = lay.ground
            self._draw_road(img, origin, rot, dashes)
            if len(patches) or len(shadows):
                self._draw_shade(img, origin, rot, patches, shadows)
            ground = img[r0:]
            cv2.multiply(ground, lay.light_mult, dst=ground, scale=1.0 / LIGHT_SCALE)
            cv2.add(ground, lay.light_add, dst=ground)
            if lay.sheen is not None:
                cv2.add(ground, lay.sheen, dst=ground, mask=self._mask[r0:])
        if len(trees):
            self._draw_trees(img, rel[trees + self._splits[2]], trees)
        if lay.glare_pano is not None:
            cv2.add(img, lay.glare_pano[:, p0 : p0 + w], dst=img)
        if lay.precipitation is not None:
            # The falling rain or snow changes as the car moves (a frame per 5 cm cell of its position),
            # as a pure function of the pose and seed.
            cell = round(pose.x_m * 20) * 73856093 ^ round(pose.y_m * 20) * 19349663 ^ self.seed * 83492791
            cv2.add(img, lay.precipitation[cell % len(lay.precipitation)], dst=img)
        return img

    def _cull(self, rel: np.ndarray) -> list[np.ndarray]:
        """Indices of the dashes, ground patches, shadows and trees whose bounding circles may be in view.

        Args:
            rel: (A,) anchor points as forward + i·left offsets from the camera, m.
        """
        fwd, left, r = rel.real, rel.imag, self._anchor_radius
        reach = fwd + r
        sel = (reach > 0) & (fwd - r < self._anchor_reach)
        sel &= np.abs(left) - r < reach * (1.05 * self._tan_half) + 2.0
        idx = np.flatnonzero(sel)
        bounds = [0, *np.searchsorted(idx, self._splits).tolist(), len(idx)]
        return [idx[i:j] - start for i, j, start in zip(bounds, bounds[1:], self._starts)]

    def _draw_road(self, img: np.ndarray, origin: complex, rot: complex, dashes: np.ndarray) -> None:
        """Fill the road's strips (verge, asphalt, solid lines), the dashes, then the strips on top."""
        rel = (self._centre - origin) * rot
        fwd, left = rel.real, rel.imag
        dist2 = fwd * fwd + left * left
        visible = (fwd > -self._behind_m) & (dist2 < self.camera.far_m**2)
        # In the horizontal view wedge, widened by the road's width and the longest (decimated) chord.
        visible &= np.abs(left) < np.maximum(fwd, 0.0) * (1.1 * self._tan_half) + self._wedge_margin_m
        polys: list[tuple[int, np.ndarray]] = []
        for idx in visible_runs(visible):
            # Fewer cross-sections far away: every 2nd beyond 30 m, every 4th beyond 60 m.
            d2 = dist2[idx]
            keep = self._level[idx] >= (d2 >= 900.0).astype(np.int8) + (d2 >= 3600.0)
            keep[0] = keep[-1] = True
            idx = idx[keep]
            centre, normal = rel[idx], self._normal[idx] * rot
            a, b = self._strip_in[:, idx], self._strip_out[:, idx]
            centre, normal, a, b = self._projector.trim_behind(centre, normal, a, b, self._max_offset_m)
            inner = centre + a * normal
            outer = centre + b * normal
            poly = np.concatenate([inner, outer[:, ::-1]], axis=1)
            pts, strips = self._projector.to_pixels(poly.real, poly.imag)
            polys.extend(zip(strips.tolist(), pts))
        if len(polys) > len(self._strip_colours):  # several runs: draw strip by strip, bottom to top
            polys.sort(key=lambda jp: jp[0])
        sheen = self._layers.sheen is not None
        if sheen:
            self._mask.fill(0)
        dashes_drawn = False
        for j, poly in polys:
            if j >= self._n_under_dashes and not dashes_drawn:
                self._draw_dashes(img, origin, rot, dashes)
                dashes_drawn = True
            cv2.fillPoly(img, [poly], self._strip_colours[j], cv2.LINE_8, SHIFT)
            if sheen and j == _ROAD_STRIP:
                cv2.fillPoly(self._mask, [poly], 255, cv2.LINE_8, SHIFT)
        if not dashes_drawn:
            self._draw_dashes(img, origin, rot, dashes)

    def _draw_dashes(self, img: np.ndarray, origin: complex, rot: complex, idx: np.ndarray) -> None:
        if not len(idx):
            return
        rel = (self._dashes[idx] - origin) * rot
        pts, _ = self._projector.to_pixels(rel.real, rel.imag)
        if len(pts):
            # cv2's stubs type `pts` as a Sequence of arrays; fillPoly equally takes one (P, K, 2) array.
            cv2.fillPoly(img, pts, self._marking_colour, cv2.LINE_AA, SHIFT)  # type: ignore[arg-type]

    def _draw_shade(
        self, img: np.ndarray, origin: complex, rot: complex, patches: np.ndarray, shadows: np.ndarray
    ) -> None:
        """Multiply the ground by its patches and tree shadows (before lighting, so night and haze apply)."""
        shade, fill, shift = self._shade, cv2.fillConvexPoly, SHIFT
        shade.fill(_SHADE_ONE)
        drawn = False
        if len(patches):
            rel = (self._patches[patches] - origin) * rot
            pts, kept = self._projector.to_pixels(rel.real, rel.imag)
            for poly, i in zip(pts, patches[kept].tolist()):
                fill(shade, poly, self._patch_colours[i], cv2.LINE_8, shift)
            drawn = len(kept) > 0
        if len(shadows):
            rel = (self._shadows[shadows] - origin) * rot
            pts, kept = self._projector.to_pixels(rel.real, rel.imag)
            for poly in pts:  # overwriting the patches (~8 in view: a call each beats grouping them)
                cv2.fillPoly(shade, [poly], self._shadow_colour, cv2.LINE_8, shift)
            drawn = drawn or len(kept) > 0
        if drawn:
            r0 = self._layers.sky_rows
            ground = img[r0:]
            cv2.multiply(ground, shade[r0:], dst=ground, scale=1.0 / _SHADE_ONE)

    def _draw_trees(self, img: np.ndarray, rel: np.ndarray, idx: np.ndarray) -> None:
        """Billboard trees, far to near: a trunk, then a round crown with a lit side or a two-tier cone."""
        cam, cond, trees = self.camera, self.condition, self._trees
        front = rel.real > cam.near_m + 1.0
        rel, idx = rel[front], idx[front]
        if not len(idx):
            return
        order = np.argsort(-rel.real, kind="stable")
        rel, idx = rel[order], idx[order]
        fw, lf = rel.real, rel.imag
        # Rows of the base, crown base, crown centre and top; columns and sizes at the crown's depth.
        up = self._tree_up[idx]
        depth = fw[:, None] * self._cp - up * self._sp
        geo: np.ndarray = np.empty((len(idx), 7))  # float pixels, then fixed-point int32 below
        geo[:, 1:5] = self._cy - self._f * (fw[:, None] * self._sp + up * self._cp) / depth
        px_per_m = self._f / depth[:, 2]
        geo[:, 0] = self._cx - lf * px_per_m
        geo[:, 5:] = self._tree_sizes[idx] * px_per_m[:, None]
        u, v_base, v_top, reach = geo[:, 0], geo[:, 1], geo[:, 4], geo[:, 6]
        # Draw trees at least 1.5 px tall whose crowns reach into the image.
        big = np.flatnonzero(
            (v_base - v_top >= 1.5) & (np.abs(u - self._cx) < reach + self._cx + 1) & (v_top < cam.height)
        )
        if not big.size:
            return
        rel, idx, geo = rel[big], idx[big], geo[big]
        haze = haze_fraction(cond, np.abs(rel))
        lit = self._tree_lit[idx] * (1 - haze)[:, None, None]
        if cond.headlights:
            lit *= illumination(cond, rel.real, rel.imag)[:, None, None]
        colours = np.clip(lit + (haze[:, None] * self._haze_rgb)[:, None, :], 0, 255).astype(int).tolist()
        geo[:, 5] = np.maximum(geo[:, 5], 0.5)  # trunks at least a pixel wide
        geo_rows = np.rint(geo * ONE).astype(np.int32).tolist()  # fixed-point ints for the cv2 calls
        conifer = (trees.kind[idx] == TREE_KIND_CONIFER).tolist()
        line, rectangle, circle, fill = cv2.LINE_8, cv2.rectangle, cv2.circle, cv2.fillConvexPoly
        for (u, vb, vcb, vcc, vt, tw, cr), (crown, top, trunk), cone in zip(geo_rows, colours, conifer):
            rectangle(img, (u - tw, vcb), (u + tw, vb), trunk, -1, line, SHIFT)
            detail = cr > 2 * ONE  # crowns over 2 px get their second shade
            if cone:  # a cone from the crown base to the top, a narrower upper tier from half-way
                fill(img, np.array([(u - cr, vcb), (u + cr, vcb), (u, vt)], np.int32), crown, line, SHIFT)
                if detail:
                    half, mid = cr // 2, (vcb + vt) // 2
                    tier = np.array([(u - half, mid), (u + half, mid), (u, vt)], np.int32)
                    fill(img, tier, top, line, SHIFT)
            else:
                circle(img, (u, vcc), cr, crown, -1, line, SHIFT)
                if detail:
                    circle(img, (u - cr // 4, vcc - cr // 3), (cr * 3) // 5, top, -1, line, SHIFT)
