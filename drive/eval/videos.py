"""Overlay videos of a closed-loop drive (mp4, OpenCV 'mp4v', one video frame per control step):

    ┌ title ─────────────────────────────── t = 12.3 s   interventions 2 ┐
    │ camera (as the policy saw it, ×2)  │  saliency heat map over it ×2  │
    │ curvature, last 10 s: policy (orange) vs expert (green); red = safety driver │
    │ neuron activity strip, last 10 s (rows = neurons, each scaled to its range)  │
    └──────────────────────────────────────────────────────────────────────┘

Drawn with OpenCV only (no matplotlib per frame), so a video costs little next to the drive itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

SCALE = 2
"""Camera panels are the camera image scaled by this factor."""
WINDOW_S = 10.0
"""Time shown by the curvature plot and the neuron strip, s."""
PLOT_HEIGHT = 110
"""Height of the curvature plot, px."""
NEURON_STRIP_HEIGHT = 120
"""Target height of the neuron strip, px (rows are whole pixels per neuron)."""
HEADER_HEIGHT = 24

_POLICY_RGB = (255, 140, 0)
_EXPERT_RGB = (80, 200, 80)
_TEXT_RGB = (235, 235, 235)


def saliency_overlay(image_rgb: np.ndarray, saliency_u8: np.ndarray, strength: float = 0.65) -> np.ndarray:
    """Blend a JET heat map into the image where the saliency is high.

    Args:
        image_rgb: (H, W, 3) uint8 RGB.
        saliency_u8: (h, w) uint8 0–255 (resized to the image).
        strength: heat-map weight at saliency 1.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    h, w = image_rgb.shape[:2]
    sal = cv2.resize(saliency_u8, (w, h), interpolation=cv2.INTER_LINEAR)
    heat = cv2.cvtColor(cv2.applyColorMap(sal, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB).astype(np.float32)
    alpha = (sal.astype(np.float32) / 255.0 * strength)[..., None]
    blended: np.ndarray = (image_rgb.astype(np.float32) * (1 - alpha) + heat * alpha).round()
    return blended.astype(np.uint8)


def write_episode_video(
    path: str | Path,
    frames: np.ndarray,
    telemetry: Mapping[str, np.ndarray],
    *,
    saliency: np.ndarray | None = None,
    hidden: np.ndarray | None = None,
    intervention_frames: list[int] | None = None,
    title: str = "",
    fps: float = 20.0,
) -> Path:
    """Write the overlay video of the first `len(frames)` control steps of an episode.

    Args:
        path: the .mp4 to write (parents are created).
        frames: (T, H, W, 3) uint8 RGB camera frames as the policy saw them.
        telemetry: per-step arrays (≥ T long): `timestamp_s`, `policy_curvature_1pm`,
            `expert_curvature_1pm`, `intervention`.
        saliency: (≥ T, h, w) uint8 saliency maps, or None (the right panel then says so).
        hidden: (≥ T, N) neuron activity, or None (no strip).
        intervention_frames: `frame` values at which the safety driver took over (the header's count);
            None counts the starts of flagged stretches instead.
        title: ASCII text for the header (OpenCV's fonts have no other glyphs).
        fps: frames per second (the control rate plays in real time).

    Returns:
        The path written.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(
            f"write_episode_video: frames must be (T > 0, H, W, 3) uint8, got {frames.shape} {frames.dtype}"
        )
    count = len(frames)
    for name in ("timestamp_s", "policy_curvature_1pm", "expert_curvature_1pm", "intervention"):
        if len(telemetry[name]) < count:
            raise ValueError(f"write_episode_video: telemetry[{name!r}] is shorter than the {count} frames")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    composer = _Composer(frames.shape[1:3], telemetry, hidden, fps, intervention_frames)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, composer.size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write mp4 video to {path}")
    try:
        for t in range(count):
            sal = saliency[t] if saliency is not None and t < len(saliency) else None
            writer.write(cv2.cvtColor(composer.frame(t, frames[t], sal, title), cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


class _Composer:
    """Lays out one video frame (RGB) from the step's image, saliency and the telemetry history."""

    def __init__(
        self,
        image_hw: tuple[int, int],
        telemetry: Mapping[str, np.ndarray],
        hidden: np.ndarray | None,
        fps: float,
        takeovers: list[int] | None,
    ) -> None:
        h, w = image_hw
        self.panel_hw = (h * SCALE, w * SCALE)
        self.width = 2 * w * SCALE
        self.window = max(2, int(round(WINDOW_S * fps)))
        self.t_s = np.asarray(telemetry["timestamp_s"], np.float64)
        self.policy = np.asarray(telemetry["policy_curvature_1pm"], np.float64)
        self.expert = np.asarray(telemetry["expert_curvature_1pm"], np.float64)
        self.flags = np.asarray(telemetry["intervention"], bool)
        if takeovers is None:  # starts of flagged stretches
            starts = np.flatnonzero(np.diff(np.concatenate([[0], self.flags.astype(int)])) == 1)
        else:  # rows of the takeover frames
            starts = np.searchsorted(np.asarray(telemetry["frame"]), np.asarray(takeovers, np.int64))
        self.takeover_rows = np.sort(starts)
        # Scale to the bulk of the values, not to a noise-driven spike (those are clipped at the edge).
        both = np.abs(np.concatenate([self.policy, self.expert]))
        self.kappa_max = max(0.03, 1.2 * float(np.nanpercentile(both, 99)))
        self.neurons: np.ndarray | None = None
        if hidden is not None and hidden.shape[1] > 0:
            x = np.asarray(hidden, np.float32)
            low, span = x.min(axis=0), np.ptp(x, axis=0)
            self.neurons = ((x - low) / np.where(span > 0, span, 1.0) * 255).astype(np.uint8)  # (T, N)
            self.row_px = max(1, NEURON_STRIP_HEIGHT // x.shape[1])
        strip = self.neurons.shape[1] * self.row_px if self.neurons is not None else 0
        height = HEADER_HEIGHT + self.panel_hw[0] + PLOT_HEIGHT + strip
        self.size = (self.width, height + height % 2)  # mp4 wants even sizes

    def frame(self, t: int, image: np.ndarray, saliency: np.ndarray | None, title: str) -> np.ndarray:
        ph, pw = self.panel_hw
        canvas = np.zeros((self.size[1], self.size[0], 3), np.uint8)
        cam = cv2.resize(image, (pw, ph), interpolation=cv2.INTER_NEAREST)
        y = HEADER_HEIGHT
        canvas[y : y + ph, :pw] = cam
        if saliency is not None:
            canvas[y : y + ph, pw : 2 * pw] = saliency_overlay(cam, saliency)
        else:
            canvas[y : y + ph, pw : 2 * pw] = (cam * 0.35).astype(np.uint8)
            _text(canvas, "no saliency", (pw + 10, y + ph // 2))
        self._header(canvas, t, title)
        y += ph
        self._curvature_plot(canvas[y : y + PLOT_HEIGHT], t)
        y += PLOT_HEIGHT
        if self.neurons is not None:
            self._neuron_strip(canvas[y : y + self.neurons.shape[1] * self.row_px], t)
        return canvas

    def _header(self, canvas: np.ndarray, t: int, title: str) -> None:
        interventions = int(np.searchsorted(self.takeover_rows, t, side="right"))
        _text(canvas, title, (6, 17))
        right = f"t = {self.t_s[t] - self.t_s[0]:5.1f} s   interventions {interventions}"
        _text(canvas, right, (self.width - 8 - 8 * len(right), 17))
        if self.flags[t]:
            cv2.rectangle(
                canvas,
                (0, HEADER_HEIGHT),
                (self.width - 1, HEADER_HEIGHT + self.panel_hw[0] - 1),
                (220, 40, 40),
                3,
            )
            _text(canvas, "SAFETY DRIVER", (10, HEADER_HEIGHT + 20), (255, 80, 80))

    def _columns(self, t: int) -> tuple[int, np.ndarray]:
        """The window's first step and the x pixel of each step in it (the present at the right edge)."""
        start = max(0, t - self.window + 1)
        steps = np.arange(start, t + 1)
        xs = (self.width - 1) - (t - steps) * (self.width - 1) / (self.window - 1)
        return start, xs

    def _curvature_plot(self, area: np.ndarray, t: int) -> None:
        area[:] = (28, 28, 28)
        h = area.shape[0]
        start, xs = self._columns(t)
        for i, x in zip(range(start, t + 1), xs):
            if self.flags[i]:
                area[:, int(x) : int(x) + 5] = (90, 25, 25)
        mid = h // 2
        cv2.line(area, (0, mid), (self.width - 1, mid), (90, 90, 90), 1)
        for series, colour in ((self.expert, _EXPERT_RGB), (self.policy, _POLICY_RGB)):
            rows = np.clip(mid - series[start : t + 1] / self.kappa_max * (h / 2 - 6), 0, h - 1)
            pts = np.stack([xs, rows], axis=1).round().astype(np.int32)
            if len(pts) > 1:
                cv2.polylines(area, [pts], False, colour, 2, cv2.LINE_AA)
        _text(area, f"curvature 1/m  policy {self.policy[t]:+.4f}", (6, 14), _POLICY_RGB)
        _text(area, f"expert {self.expert[t]:+.4f}", (6, 30), _EXPERT_RGB)
        _text(area, f"+/-{self.kappa_max:.3f}", (self.width - 100, 14), (160, 160, 160))

    def _neuron_strip(self, area: np.ndarray, t: int) -> None:
        if self.neurons is None:
            return
        start, xs = self._columns(t)
        block = self.neurons[start : t + 1].T  # (N, steps)
        width = max(1, int(round(xs[-1] - xs[0])) + 1) if len(xs) > 1 else 1
        image = cv2.resize(block, (width, block.shape[0] * self.row_px), interpolation=cv2.INTER_NEAREST)
        coloured = cv2.cvtColor(cv2.applyColorMap(image, cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)
        area[:] = 0
        area[:, self.width - width :] = coloured


def _text(img: np.ndarray, text: str, org: tuple[int, int], colour: tuple[int, int, int] = _TEXT_RGB) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
