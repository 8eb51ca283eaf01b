"""Log one recorded drive into a Rerun recording stream, every stream on the timelines `frame` and `time`.

Entity paths under the drive's prefix P (`ENTITIES`, declared once here; a test reads them back):

    P/camera/image            the camera frame (JPEG-compressed by the SDK)
    P/camera/saliency         the saliency heat map blended over the frame (when the drive has saliency)
    P/curvature/policy        the policy's curvature, 1/m (closed-loop and evaluation drives)
    P/curvature/label         the expert's / recorded label curvature, 1/m
    P/curvature/executed      the curvature the car executed, 1/m
    P/neurons                 neuron activity, one series per neuron (when the drive has a hidden state)
    P/map/track               the track's road edges and lane centre (embedded tracks; static)
    P/map/trajectory          the whole driven path (static)
    P/map/ego                 the car's position now
    P/events                  one text event per safety-driver intervention (with its cause when known)

`frame` counts the drive's frames from 0; `time` is seconds from its first frame, so several drives of
an evaluation line up on one timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from recordings.reader import Recording

ENTITIES = {
    "image": "camera/image",
    "saliency": "camera/saliency",
    "policy": "curvature/policy",
    "label": "curvature/label",
    "executed": "curvature/executed",
    "neurons": "neurons",
    "track": "map/track",
    "trajectory": "map/trajectory",
    "ego": "map/ego",
    "events": "events",
}
"""Entity paths of a drive, relative to its prefix."""

JPEG_QUALITY = 90
"""Quality of the camera images in the recording (raw frames would make a long drive's .rrd huge)."""


def drive_track(recording: Recording) -> Any:
    """The embedded track the drive was on (`sim.tracks.track.Track`), or None (a CARLA town, an imported
    drive: no map is known here)."""
    from sim.tracks.track_gen import make_track, validate_track_name

    if recording.meta.get("simulator") != "embedded":
        return None
    try:
        validate_track_name(str(recording.meta["track"]))
    except ValueError:
        return None
    return make_track(str(recording.meta["track"]))


def intervention_starts(flags: np.ndarray) -> list[int]:
    """Frame positions where a stretch of safety-driver control begins: (T,) bool -> sorted indices."""
    flags = np.asarray(flags, bool)
    return [int(i) for i in np.flatnonzero(flags & ~np.concatenate([[False], flags[:-1]]))]


def log_drive(
    rr: Any,
    stream: Any,
    recording: Recording,
    prefix: str = "",
    causes: dict[int, str] | None = None,
    on_frame: Callable[[], None] | None = None,
) -> int:
    """Log `recording` into `stream` under `prefix`; returns the number of frames logged.

    Args:
        rr: the `rerun` module (`drive.view.rerun_import.import_rerun`).
        stream: a `rerun.RecordingStream`.
        recording: the drive.
        prefix: entity-path prefix ("" for a single drive, the episode id in an evaluation).
        causes: recorded `frame` value -> cause of the intervention there (from an evaluation's log).
        on_frame: called after every frame (progress bars).
    """
    path = {k: f"{prefix.rstrip('/')}/{v}" if prefix else v for k, v in ENTITIES.items()}
    tel = recording.telemetry
    times = np.asarray(tel["timestamp_s"], np.float64) - float(tel["timestamp_s"][0])
    _log_static(rr, stream, recording, path)
    starts = set(intervention_starts(tel["intervention"]))
    has_saliency = "saliency" in recording.array_names
    has_hidden = "hidden_state" in recording.array_names
    series = [(path["label"], tel["expert_curvature_1pm"]), (path["executed"], tel["curvature_1pm"])]
    if "policy_curvature_1pm" in tel:
        series.append((path["policy"], tel["policy_curvature_1pm"]))
    for k in range(recording.num_chunks):
        frames = recording.chunk("frames", k)
        saliency = recording.chunk("saliency", k) if has_saliency else None
        hidden = recording.chunk("hidden_state", k) if has_hidden else None
        for j, image in enumerate(frames):
            t = k * recording.chunk_frames + j
            stream.set_time("frame", sequence=t)
            stream.set_time("time", duration=float(times[t]))
            stream.log(path["image"], rr.Image(image).compress(jpeg_quality=JPEG_QUALITY))
            if saliency is not None:
                from drive.eval.videos import saliency_overlay

                overlay = saliency_overlay(image, saliency[j])
                stream.log(path["saliency"], rr.Image(overlay).compress(jpeg_quality=JPEG_QUALITY))
            for entity, values in series:
                stream.log(entity, rr.Scalars(float(values[t])))
            if hidden is not None:
                stream.log(path["neurons"], rr.Scalars(hidden[j].astype(np.float64)))
            stream.log(path["ego"], rr.Points2D([[float(tel["x_m"][t]), float(tel["y_m"][t])]], radii=0.8))
            if t in starts:
                cause = (causes or {}).get(int(tel["frame"][t]), "")
                text = "safety driver took over" + (f": {cause}" if cause else "")
                stream.log(path["events"], rr.TextLog(text, level="WARN"))
            if on_frame is not None:
                on_frame()
    return recording.num_frames


def _log_static(rr: Any, stream: Any, recording: Recording, path: dict[str, str]) -> None:
    """The track map, the whole path and the plots' colours and names (timeless)."""
    tel = recording.telemetry
    track = drive_track(recording)
    if track is not None:
        xy = track.centre_xy_m
        normal = np.stack([-np.sin(track.heading_rad), np.cos(track.heading_rad)], axis=1)
        strips = [np.vstack([xy, xy[:1]])]
        for side in (1.0, -1.0):
            edge = xy + side * track.road_half_width_m * normal
            strips.append(np.vstack([edge, edge[:1]]))
        stream.log(
            path["track"],
            rr.LineStrips2D(strips, colors=[(200, 200, 200), (120, 120, 120), (120, 120, 120)]),
            static=True,
        )
    trajectory = np.stack([tel["x_m"], tel["y_m"]], axis=1).astype(np.float64)
    stream.log(path["trajectory"], rr.LineStrips2D([trajectory], colors=[(255, 140, 0)]), static=True)
    styles = {
        "label": ((80, 200, 80), "label"),
        "executed": ((90, 90, 255), "executed"),
        "policy": ((255, 140, 0), "policy"),
    }
    for key, (colour, name) in styles.items():
        stream.log(path[key], rr.SeriesLines(colors=[colour], names=[name]), static=True)
