"""Import one foreign drive: read it (a format reader), convert the label, align, write episodes.

The episodes are ordinary recordings (`recordings.writer.RecordingWriter`): validated, listed and
trained on like recorded ones. Only meta.json says where they came from: `simulator` is
`import:<format>` and `extra.import` holds the source, the label conversion with its parameters, the
source clock's origin and the summary. Two extra telemetry columns keep every step traceable:
`source_time_s` (the step's time on the source clock) and `source_frame` (the camera frame it shows).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from common.strict_config import to_dict
from drive.importers.align import Alignment, Segment, Series, align, sample
from drive.importers.config import ImportConfig
from drive.importers.source import ImportSummary, SourceDrive
from drive.importers.steering import count_beyond_lock, resolve_conversion
from perception.preprocess import PreprocessContract, preprocess_u8
from recordings.writer import RecordingWriter

POSE = ("x_m", "y_m", "yaw_rad")
"""Pose columns filled from the source's odometry when it has one (NaN otherwise)."""
EXTRA_COLUMNS = {"source_time_s": "float64", "source_frame": "int64"}
"""Telemetry columns an imported episode adds: the source clock time and source frame of each step."""


def import_drive(
    source: SourceDrive,
    config: ImportConfig,
    out_dir: str | Path,
    *,
    format_name: str,
    source_path: str | Path,
    progress: bool = False,
) -> ImportSummary:
    """Align `source` to the control rate and write its valid runs as `out_dir/episode-NNNN`.

    Raises:
        ValueError: the label conversion lacks a parameter, nothing survives the alignment (the
            reasons are named), or `out_dir` already holds episodes.
    """
    out = Path(out_dir)
    conversion = resolve_conversion(
        config.label, config.vehicle, source.default_label_kind, source.default_left_positive
    )
    curvature = Series(source.label.times_s, conversion.curvature_1pm(source.label.values))
    alignment = align(source.frame_times_s, curvature, source.speed, config.align)
    summary = ImportSummary(
        format=format_name,
        source=str(source_path),
        out=str(out),
        read=dict(source.read),
        dropped_samples=dict(source.dropped),
        dropped_steps=dict(alignment.dropped),
        grid_steps=alignment.grid_steps,
        episodes=[],
        control_period_s=config.align.control_period_s,
        frames_reused=alignment.frames_reused,
        steps_without_speed=alignment.steps_without_speed,
        labels_beyond_lock=count_beyond_lock(conversion, source.label.values, config.vehicle.max_steer_rad),
        conversion=conversion.formula(),
    )
    if not alignment.segments:
        why = "; ".join(f"{v} {k}" for k, v in alignment.dropped.items())
        if source.dropped:
            why += "; before alignment: " + "; ".join(f"{v} {k}" for k, v in source.dropped.items())
        raise ValueError(
            f"nothing to import from {source_path}: all {alignment.grid_steps} control steps dropped ({why})"
        )
    check_out(out)
    meta_import = {
        "format": format_name,
        "source": str(Path(source_path).resolve()),
        "conversion": conversion.to_dict(),
        "source_time_origin_s": alignment.t0_s,
        "details": source.details,
        "assumed": {"on_road": True, "intervention": False, "noise_variance": 0.0},
        "not_measured": ["lateral_offset_m", "heading_error_rad"] + [k for k in POSE if k not in source.pose],
    }
    _write_episodes(source, alignment, config, out, meta_import, summary, progress)
    return summary


def check_out(out: Path) -> None:
    """Refuse an `out` that is a file or already holds episodes (FileExistsError naming it)."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.glob("episode-*")):
        raise FileExistsError(f"{out}: already holds episodes; choose an empty --out")


def _write_episodes(
    source: SourceDrive,
    alignment: Alignment,
    config: ImportConfig,
    out: Path,
    meta_import: dict[str, Any],
    summary: ImportSummary,
    progress: bool,
) -> None:
    from tqdm import tqdm

    contract = PreprocessContract(**to_dict(config.camera))
    shape = (contract.out_height, contract.out_width, 3)
    frames = _frames_in_order(source, alignment)
    total = sum(len(s) for s in alignment.segments)
    meta_base = {
        "simulator": f"import:{summary.format}",
        "track": config.track or source.name,
        "condition": config.condition,
        "control_period_s": config.align.control_period_s,
        "config": to_dict(config),
    }
    out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=total, unit="frame", disable=not progress, dynamic_ncols=True, desc="import") as bar:
        # every episode's meta.json carries the whole summary, so the list is complete before the first
        summary.episodes = [(f"episode-{n:04d}", len(s)) for n, s in enumerate(alignment.segments)]
        for number, segment in enumerate(alignment.segments):
            name = summary.episodes[number][0]
            extra = {"import": {**meta_import, "summary": summary.to_dict(), "segment": number}}
            with RecordingWriter(
                out / name,
                image_shape=shape,
                meta={**meta_base, "extra": extra},
                chunk_frames=config.chunk_frames,
                extra_columns=EXTRA_COLUMNS,
            ) as writer:
                pose = _pose(source, segment, config)
                for i, row in enumerate(_rows(segment, pose, alignment.t0_s, config.align.control_period_s)):
                    writer.append(preprocess_u8(frames(int(segment.frame_index[i])), contract), row)
                    bar.update(1)


def _frames_in_order(source: SourceDrive, alignment: Alignment) -> Callable[[int], np.ndarray]:
    """A function index -> decoded RGB frame for non-decreasing indices, reading the source once."""
    needed = np.unique(np.concatenate([s.frame_index for s in alignment.segments]))
    stream: Iterator[tuple[int, np.ndarray]] = source.read_frames(needed)
    last: list[Any] = [-1, None]

    def get(index: int) -> np.ndarray:
        while last[0] < index:
            try:
                last[0], last[1] = next(stream)
            except StopIteration:
                raise ValueError(f"{source.name}: camera frame {index} could not be read") from None
        if last[0] != index:
            raise ValueError(f"{source.name}: camera frame {index} was not delivered in order")
        image: np.ndarray = last[1]
        return image

    return get


def _pose(source: SourceDrive, segment: Segment, config: ImportConfig) -> dict[str, np.ndarray]:
    """(K,) x_m, y_m, yaw_rad of each step of `segment`, sampled like the speed; NaN where unknown."""
    pose = {}
    for name in POSE:
        series = source.pose.get(name)
        if series is None:
            pose[name] = np.full(len(segment), np.nan)
            continue
        values, _ = sample(series, segment.times_s, config.align.method, config.align.speed_tolerance_s)
        pose[name] = np.angle(np.exp(1j * values)) if name == "yaw_rad" else values  # yaw back to (-pi, pi]
    return pose


def _rows(
    segment: Segment, pose: dict[str, np.ndarray], t0_s: float, period_s: float
) -> Iterator[dict[str, Any]]:
    """The telemetry rows of one segment; unmeasured quantities are NaN (see meta `not_measured`)."""
    speed = segment.speed_mps
    distance = np.cumsum(np.nan_to_num(speed) * period_s) if np.isfinite(speed).any() else speed
    nan = math.nan
    for i in range(len(segment)):
        label = float(segment.label[i])
        yield {
            "frame": int(segment.steps[i]),
            "timestamp_s": float(segment.times_s[i] - t0_s),
            "speed_mps": float(speed[i]),
            "curvature_1pm": label,
            "expert_curvature_1pm": label,
            "lateral_offset_m": nan,
            "heading_error_rad": nan,
            "progress_m": float(distance[i]),
            "x_m": float(pose["x_m"][i]),
            "y_m": float(pose["y_m"][i]),
            "yaw_rad": float(pose["yaw_rad"][i]),
            "on_road": True,
            "intervention": False,
            "noise_variance": 0.0,
            "source_time_s": float(segment.times_s[i]),
            "source_frame": int(segment.frame_index[i]),
        }
