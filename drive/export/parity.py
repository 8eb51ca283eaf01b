"""The export's parity check: the PyTorch policy and its ONNX graph driven over the same frame sequence.

Both sides carry their own recurrent state from frame to frame, exactly as in a drive, so the check
covers the state feedback too (an error that grows through the recurrence shows up). The frames are a
recorded drive when one is given, otherwise `synthetic_frames`: a smoothly winding road, so the
features (and the state) move the way they do on a real drive rather than jumping between noise images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from drive.export.graphs import CONTROL_PERIOD_S
from drive.onboard.contract import (
    CURVATURE_OUTPUT,
    ELAPSED_INPUT,
    FEATURES_INPUT,
    FEATURES_OUTPUT,
    IMAGE_INPUT,
    STATE_INPUT,
    STATE_OUTPUT,
)
from policies.driving_policy import DrivingPolicy

OnnxStep = Callable[..., tuple[np.ndarray, np.ndarray]]
"""One graph call: (image (1, H, W, 3) uint8, state (1, N) float32[, elapsed_s float, s]) -> (curvature
(1,), next state). The elapsed time reaches a graph with an `elapsed_s` input (default: one period)."""


@dataclass(frozen=True)
class ParityResult:
    """How far an ONNX graph's curvatures are from PyTorch's over a sequence.

    Attributes:
        steps: frames driven.
        max_abs_diff_1pm: max over the steps of |curvature_onnx - curvature_torch|, 1/m.
        rms_diff_1pm: root mean square of the same differences, 1/m.
        max_state_diff: max |state_onnx - state_torch| over all steps and units.
        curvature_rms_1pm: RMS of PyTorch's curvatures, 1/m (the scale the differences compare to).
        source: "synthetic" or "recording:<path>[start:stop]".
    """

    steps: int
    max_abs_diff_1pm: float
    rms_diff_1pm: float
    max_state_diff: float
    curvature_rms_1pm: float
    source: str


def synthetic_frames(steps: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smoothly varying drive: sky, grass, and a road whose bend and position change frame to frame.

    Args:
        steps: number of frames T.
        height, width: frame size, px.
        seed: texture noise seed.

    Returns:
        (T, height, width, 3) uint8 RGB.
    """
    if steps < 1 or height < 2 or width < 2:
        raise ValueError(
            f"synthetic_frames: need steps >= 1 and a frame of at least 2x2, got {steps}, {height}x{width}"
        )
    rng = np.random.default_rng(seed)
    texture = rng.normal(0.0, 9.0, (height, width, 1)).astype(np.float32)
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]  # 0 at the top
    cols = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    horizon = 0.35
    depth = np.clip((rows - horizon) / (1.0 - horizon), 0.0, 1.0)  # 0 at the horizon, 1 at the bonnet
    frames = np.empty((steps, height, width, 3), np.uint8)
    sky = np.stack([120 + 60 * rows, 160 + 50 * rows, 230 + 0 * rows], -1) * np.ones((1, width, 1))
    for t in range(steps):
        phase = 2 * np.pi * t / 90.0
        bend = 0.8 * np.sin(phase)  # road curvature as seen in the image
        offset = 0.3 * np.sin(0.6 * phase + 1.0)  # car's lateral position on the road
        centre = offset * depth + bend * (1.0 - depth) ** 2
        half_width = 0.05 + 0.55 * depth
        across = np.abs(cols - centre) / np.maximum(half_width, 1e-3)
        road = across < 1.0
        dashes = (np.abs(cols - centre) < 0.01 + 0.02 * depth) & (np.sin(30 * depth**0.5 - 0.5 * t) > 0)
        grass = np.stack([70 + 30 * depth, 130 + 40 * depth, 60 + 0 * depth], -1) * np.ones((1, width, 1))
        image = np.where(road[..., None], 105.0 + 20.0 * depth[..., None], grass)
        image = np.where(dashes[..., None], 235.0, image)
        image = np.where((rows < horizon)[..., None], sky, image) + texture
        frames[t] = np.clip(image, 0, 255).astype(np.uint8)
    return frames


def recorded_frames(path: str | Path, steps: int, height: int, width: int, start: int = 0) -> np.ndarray:
    """`steps` frames of a recorded drive, checked against the policy's camera size.

    Args:
        path: a recording (episode directory) written by `drive record`.
        steps: frames wanted, from `start`.
        height, width: the policy's camera size, px.

    Returns:
        (steps, height, width, 3) uint8 RGB.
    """
    from recordings import Recording  # the recordings package; imported only when a recording is used

    recording = Recording(path)
    if recording.num_frames < start + steps:
        raise ValueError(
            f"recording {path} has {recording.num_frames} frames; the parity check needs {steps} from "
            f"frame {start} (use --parity-steps to ask for fewer)"
        )
    frames = np.asarray(recording.frames(start, start + steps))
    if frames.ndim != 4 or frames.dtype != np.uint8 or frames.shape[1:] != (height, width, 3):
        raise ValueError(
            f"recording {path} holds {frames.shape[1:]} {frames.dtype} frames, but the policy's camera "
            f"is ({height}, {width}, 3) uint8"
        )
    return frames


def parity_frames(
    policy: DrivingPolicy, steps: int, frames_dir: str | Path | None = None, start: int = 0
) -> tuple[np.ndarray, str]:
    """The parity sequence: `steps` frames of a recording, or synthetic ones; and its source label."""
    if steps < 1:
        raise ValueError(f"parity steps must be >= 1, got {steps}")
    height, width = policy.config.camera_height, policy.config.camera_width
    if frames_dir is None:
        return synthetic_frames(steps, height, width), "synthetic"
    frames = recorded_frames(frames_dir, steps, height, width, start)
    return frames, f"recording:{frames_dir}[{start}:{start + steps}]"


def calibration_frames(
    path: str | Path | None, count: int, height: int, width: int, skip: int = 0
) -> tuple[np.ndarray, str]:
    """Frames to calibrate int8 quantisation on, away from the parity sequence; and their source label.

    From a recording: `count` frames spread evenly over frames `skip` .. end (the parity check uses the
    first `skip`), so the calibration sees every bend and light of the drive and the accuracy cost is
    measured on frames it was not calibrated on. A recording with no frames past `skip` lends its parity
    frames (said in the label). Without a recording: `synthetic_frames` of another texture seed.

    Returns:
        (n, height, width, 3) uint8 RGB with n <= count, and e.g. "recording:<path>, 256 of frames 200..3000".
    """
    if count < 1:
        raise ValueError(f"calibration needs >= 1 frame, got {count}")
    if path is None:
        return synthetic_frames(count, height, width, seed=1), f"synthetic (seed 1), {count} frames"
    from recordings import Recording

    recording = Recording(path)
    total = recording.num_frames
    first = skip if total > skip else 0
    picks = np.unique(np.linspace(first, total - 1, min(count, total - first)).round().astype(int))
    frames = np.stack([recording.frames(i, i + 1)[0] for i in picks])
    if frames.shape[1:] != (height, width, 3) or frames.dtype != np.uint8:
        raise ValueError(
            f"recording {path} holds {frames.shape[1:]} {frames.dtype} frames, but the policy's camera "
            f"is ({height}, {width}, 3) uint8"
        )
    overlap = " (overlapping the parity frames: the recording is short)" if first == 0 and skip > 0 else ""
    return frames, f"recording:{path}, {len(picks)} of frames {first}..{total}{overlap}"


def torch_rollout(
    policy: DrivingPolicy, frames: np.ndarray, elapsed_s: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's curvatures (T,) and states (T, state_size) over `frames`, batch 1, zero initial state.

    Args:
        policy: the policy.
        frames: (T, H, W, 3) uint8.
        elapsed_s: (T,) seconds before each frame, or None for one period each.
    """
    curvatures, states = [], []
    with torch.no_grad():
        state = policy.initial_state(1)
        for t, frame in enumerate(frames):
            periods = (
                1.0 if elapsed_s is None else float(np.float32(elapsed_s[t]) / np.float32(CONTROL_PERIOD_S))
            )
            curvature, state = policy.step(torch.from_numpy(frame[None]), state, periods)
            curvatures.append(float(curvature[0]))
            states.append(state[0].numpy().copy())
    return np.asarray(curvatures, np.float64), np.asarray(states, np.float32).reshape(len(frames), -1)


def onnx_rollout(
    step: OnnxStep, frames: np.ndarray, state_size: int, elapsed_s: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A graph's curvatures (T,) and states (T, state_size) over `frames`, zero initial state; `elapsed_s`
    (T,) seconds before each frame, or None for one period each (`torch_rollout`)."""
    state = np.zeros((1, state_size), np.float32)
    curvatures, states = [], []
    for t, frame in enumerate(frames):
        image = np.ascontiguousarray(frame[None])
        if elapsed_s is None:
            curvature, state = step(image, state)
        else:
            curvature, state = step(image, state, float(elapsed_s[t]))
        curvatures.append(float(np.asarray(curvature).reshape(-1)[0]))
        states.append(np.asarray(state, np.float32)[0].copy())
    return np.asarray(curvatures, np.float64), np.asarray(states, np.float32).reshape(len(frames), -1)


def irregular_elapsed_s(steps: int, seed: int = 0) -> np.ndarray:
    """(steps,) float32 elapsed times drawn uniformly in [0.5, 3] control periods, s: the irregular
    frame timing the elapsed-time parity check drives with (dropped frames, jitter)."""
    periods = np.random.default_rng(seed).uniform(0.5, 3.0, steps)
    return (periods * CONTROL_PERIOD_S).astype(np.float32)


def compare_rollouts(
    reference: tuple[np.ndarray, np.ndarray],
    candidate: tuple[np.ndarray, np.ndarray],
    source: str,
    policy_state_size: int,
) -> ParityResult:
    """Parity of `candidate` against `reference` (both from the rollout functions above).

    Only the first `policy_state_size` state units are compared (a stateless policy's graph carries a
    1-wide dummy state that PyTorch does not have).
    """
    (ref_c, ref_s), (cand_c, cand_s) = reference, candidate
    diff = np.abs(cand_c - ref_c)
    state_diff = np.abs(cand_s[:, :policy_state_size] - ref_s[:, :policy_state_size])
    return ParityResult(
        steps=len(ref_c),
        max_abs_diff_1pm=float(diff.max()),
        rms_diff_1pm=float(np.sqrt(np.mean(diff**2))),
        max_state_diff=float(state_diff.max()) if state_diff.size else 0.0,
        curvature_rms_1pm=float(np.sqrt(np.mean(ref_c**2))),
        source=source,
    )


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    """A 1-thread CPU onnxruntime session on an in-memory model."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: the fp16 variant's fallback notices are expected
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _elapsed_feed(model: onnx.ModelProto, elapsed_s: float) -> dict[str, np.ndarray]:
    """{elapsed_s: (1, 1) float32} for a graph with the elapsed input, {} for one without."""
    if ELAPSED_INPUT not in {i.name for i in model.graph.input}:
        return {}
    return {ELAPSED_INPUT: np.full((1, 1), elapsed_s, np.float32)}


def full_step(model: onnx.ModelProto) -> OnnxStep:
    """An `OnnxStep` calling a full graph."""
    sess = session(model)
    names = [CURVATURE_OUTPUT, STATE_OUTPUT]

    def step(
        image: np.ndarray, state: np.ndarray, elapsed_s: float = CONTROL_PERIOD_S
    ) -> tuple[np.ndarray, np.ndarray]:
        feeds = {IMAGE_INPUT: image, STATE_INPUT: state, **_elapsed_feed(model, elapsed_s)}
        return tuple(sess.run(names, feeds))

    return step


def split_step(vision: onnx.ModelProto, policy: onnx.ModelProto) -> OnnxStep:
    """An `OnnxStep` chaining a split export's vision graph into its policy graph."""
    vision_sess, policy_sess = session(vision), session(policy)
    names = [CURVATURE_OUTPUT, STATE_OUTPUT]

    def step(
        image: np.ndarray, state: np.ndarray, elapsed_s: float = CONTROL_PERIOD_S
    ) -> tuple[np.ndarray, np.ndarray]:
        (features,) = vision_sess.run([FEATURES_OUTPUT], {IMAGE_INPUT: image})
        feeds = {FEATURES_INPUT: features, STATE_INPUT: state, **_elapsed_feed(policy, elapsed_s)}
        return tuple(policy_sess.run(names, feeds))

    return step
