"""A recorded drive played back as a `Simulator`: the open-loop evaluation's "simulator".

Open loop there is no world to answer the policy: frame t+1 is what was recorded, whatever the policy
commanded at t. Playing a recording through the `Simulator` protocol lets the open-loop evaluation reuse
the closed loop's machinery unchanged: the same perturbation wrappers (`sim.perturbations.wrap`, so the
same noise levels, noise spaces and per-frame noise streams drawn from (seed, wrapper, frame)), the same
`drive.closed_loop.loop.run_episode` and the same drivers (saliency, neuron activity).

`info` carries the recorded privileged truth: the label (`expert_curvature_1pm`, or the column chosen),
pose, lateral offset and heading error where the recording has them (an imported drive may hold NaN),
`recorded_intervention` and `truncated` on the last frame. `Observation.frame` is the position in the
recording (0 … T − 1), so a perturbation's noise depends on the frame's place in the drive, not on a
recorder's frame numbering.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recordings.reader import Recording
from sim.types import Command, Observation, Pose

LABEL_COLUMN = "expert_curvature_1pm"
"""The training label of every recording (`recordings.catalog.LABEL_COLUMN`): curvature, 1/m."""


class ReplaySimulator:
    """Plays `recording` frame by frame; commands are ignored (open loop).

    Args:
        recording: the episode to play.
        label_column: telemetry column reported as `info["expert_curvature_1pm"]` (1/m).
        max_frames: play only the first `max_frames` frames; None: all.

    Raises:
        ValueError: the label column is missing, or the recording has no frames.
    """

    def __init__(
        self, recording: Recording, label_column: str = LABEL_COLUMN, max_frames: int | None = None
    ) -> None:
        if label_column not in recording.telemetry:
            raise ValueError(
                f"{recording.path}: no telemetry column {label_column!r} to use as the label; "
                f"columns: {sorted(recording.telemetry)}"
            )
        self.recording = recording
        self.label_column = label_column
        total = recording.num_frames if max_frames is None else min(int(max_frames), recording.num_frames)
        if total < 1:
            raise ValueError(f"{recording.path}: no frames to replay")
        self.num_frames = total
        self._t = -1
        self._chunk_index = -1
        self._chunk: np.ndarray | None = None
        self._closed = False

    # -- Simulator protocol -------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        """Back to the first frame. `seed` changes nothing here (a recording is what it is); the
        perturbation wrappers around this simulator draw their noise from it."""
        if options:
            raise ValueError(f"a replayed recording takes no reset options, got {sorted(options)}")
        self._check_open()
        self._t = 0
        return self._observe()

    def step(self, command: Command) -> tuple[Observation, dict[str, Any]]:
        """The next recorded frame; `command` does not change it (open loop)."""
        self._check_open()
        if self._t < 0:
            raise RuntimeError("call reset() before step()")
        if self._t + 1 >= self.num_frames:
            raise RuntimeError(f"the replay of {self.recording.path} has ended ({self.num_frames} frames)")
        self._t += 1
        return self._observe()

    def close(self) -> None:
        """Drop the cached chunk; safe to call twice."""
        self._chunk = None
        self._closed = True

    def __enter__(self) -> ReplaySimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the replay is closed")

    def _image(self, t: int) -> np.ndarray:
        """Frame t, (H, W, 3) uint8, read one chunk at a time (one decode per `chunk_frames` frames)."""
        index = t // self.recording.chunk_frames
        if index != self._chunk_index or self._chunk is None:
            self._chunk = self.recording.chunk("frames", index)
            self._chunk_index = index
        image: np.ndarray = self._chunk[t - index * self.recording.chunk_frames]
        return image

    def _observe(self) -> tuple[Observation, dict[str, Any]]:
        t, tel = self._t, self.recording.telemetry
        time_s = float(tel["timestamp_s"][t] - tel["timestamp_s"][0])
        info: dict[str, Any] = {
            "lateral_offset_m": float(tel["lateral_offset_m"][t]),
            "heading_error_rad": float(tel["heading_error_rad"][t]),
            "progress_m": float(tel["progress_m"][t]),
            "on_road": bool(tel["on_road"][t]),
            "collision": False,
            "expert_curvature_1pm": float(tel[self.label_column][t]),
            "pose": Pose(float(tel["x_m"][t]), float(tel["y_m"][t]), float(tel["yaw_rad"][t])),
            "curvature_1pm": float(tel["road_curvature_1pm"][t]) if "road_curvature_1pm" in tel else np.nan,
            "recorded_curvature_1pm": float(tel["curvature_1pm"][t]),
            "recorded_intervention": bool(tel["intervention"][t]),
            "recorded_frame": int(tel["frame"][t]),
            "time_s": time_s,
            "truncated": t + 1 >= self.num_frames,
        }
        obs = Observation(
            image=self._image(t), speed_mps=float(tel["speed_mps"][t]), timestamp_s=time_s, frame=t
        )
        return obs, info
