"""Tiny episodes for the recordings tests: frames that encode their own index, labels that encode both."""

from __future__ import annotations

from pathlib import Path

from recordings.synthetic import indexed_frame, telemetry_rows
from recordings.writer import RecordingWriter

SHAPE = (6, 8, 3)
META = {
    "simulator": "embedded",
    "track": "oval",
    "condition": "clear",
    "seed": 7,
    "control_period_s": 0.05,
    "config": {"sim": {"track": "oval", "speed_mps": 4.47}},
    "extra": {"note": "test"},
}


def label_of(index: int, episode: int) -> float:
    """The expert label written for frame `index` of `episode` (exact in float32)."""
    return episode + index / 1024.0


def write_episode(
    path: Path,
    num_frames: int,
    *,
    episode: int = 0,
    chunk_frames: int = 8,
    decode_frames: int = 4,
    shape: tuple[int, int, int] = SHAPE,
    condition: str = "clear",
    **writer_kwargs,
) -> Path:
    """A closed episode of `indexed_frame`s, synthetic telemetry and `label_of` labels.

    Frames are stored sharded (`decode_frames` < `chunk_frames`) unless the caller says otherwise.
    """
    meta = {**META, "seed": episode, "condition": condition}
    with RecordingWriter(
        path,
        image_shape=shape,
        meta=meta,
        chunk_frames=chunk_frames,
        decode_frames=decode_frames,
        **writer_kwargs,
    ) as w:
        for i, row in enumerate(telemetry_rows(num_frames, seed=episode)):
            row["expert_curvature_1pm"] = label_of(i, episode)
            w.append(indexed_frame(i, episode, shape), row)
    return path
