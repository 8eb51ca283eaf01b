"""The onboard runtime: an exported ONNX policy driven frame by frame with onnxruntime alone.

    camera frame (H, W, 3) uint8 RGB ─► OnboardPolicy.act ─► curvature 1/m (left positive)
                                           │  image, state[, elapsed_s] ─► model.onnx ─► curvature, next_state
                                           └── next_state kept for the next frame (reset() zeroes it)

A continuous-time head (LTC, CfC) is exported with an `elapsed_s` input: `act` feeds it the seconds since
the previous frame, measured on the monotonic clock unless the caller gives them (a camera timestamp), so
a late or lost frame advances the state by the time that really passed.

This module is the deployment side of `drive export`; the contract both sides speak (graph input and output
names, `metadata_props` keys) is in `contract` beside it. It imports numpy and onnxruntime only (never torch,
carla, or a project module outside this folder): the onboard computer has neither.

The model carries its own contract: camera size, state width, control rate, units, and how the policy
was made (name, wiring digest, training config digest, preprocessing contract, parity at export).
Everything is checked when the model is opened, so a wrong or foreign file fails at start-up with the
file and the key named, never mid-drive.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .contract import (  # relative: the folder is copied to the board alone
    _STEP_OUTPUTS,
    CURVATURE_OUTPUT,
    ELAPSED_INPUT,
    FEATURES_INPUT,
    FEATURES_OUTPUT,
    IMAGE_INPUT,
    STATE_INPUT,
    STATE_OUTPUT,
    MetaKey,
    ModelContract,
    ModelContractError,
    check_model_digest,
    read_contract,
)


def open_session(
    path: str | Path,
    intra_op_num_threads: int = 1,
    providers: list[str] | None = None,
    optimization_level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
) -> ort.InferenceSession:
    """An onnxruntime session for `path`, sequential, with `intra_op_num_threads` threads.

    Raises:
        FileNotFoundError: no such file.
        ModelContractError: onnxruntime cannot load it (not an ONNX model, or damaged).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    if (
        isinstance(intra_op_num_threads, bool)
        or not isinstance(intra_op_num_threads, int)
        or intra_op_num_threads < 1
    ):
        raise ValueError(f"intra_op_num_threads must be a positive int, got {intra_op_num_threads!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_num_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = optimization_level
    try:
        return ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for unreadable files
        raise ModelContractError(f"model {path} cannot be loaded by onnxruntime: {err}") from None


def _check_io(
    session: ort.InferenceSession,
    path: Path,
    inputs: Mapping[str, tuple[str, Sequence[int | None]]],
    outputs: Mapping[str, tuple[str, Sequence[int | None]]],
) -> None:
    """Check the graph's input/output names, element types and shapes against the metadata's."""
    for kind, declared, expected in (
        ("input", session.get_inputs(), inputs),
        ("output", session.get_outputs(), outputs),
    ):
        by_name = {arg.name: arg for arg in declared}
        if set(by_name) != set(expected):
            raise ModelContractError(
                f"model {path}: graph {kind}s are {sorted(by_name)}, expected {sorted(expected)}"
            )
        for name, (dtype, shape) in expected.items():
            arg = by_name[name]
            if arg.type != dtype or list(arg.shape) != list(shape):
                raise ModelContractError(
                    f"model {path}: {kind} {name!r} is {arg.type} {list(arg.shape)}, but the metadata "
                    f"promises {dtype} {shape}"
                )


def _takes_elapsed(contract: ModelContract) -> bool:
    """Whether the contract names `ELAPSED_INPUT` as the graph's elapsed-time input (in seconds)."""
    name = contract.elapsed_input
    if name is None:
        return False
    units = contract.metadata.get(MetaKey.ELAPSED_UNITS)
    if name != ELAPSED_INPUT or units != "s":
        raise ModelContractError(
            f"model {contract.path}: metadata {MetaKey.ELAPSED_INPUT!r} = {name!r} in {units!r}, this "
            f"runtime feeds {ELAPSED_INPUT!r} in 's'"
        )
    return True


def _elapsed_io(timed: bool) -> dict[str, tuple[str, list[int]]]:
    return {ELAPSED_INPUT: ("tensor(float)", [1, 1])} if timed else {}


def _diagnostic_outputs(
    session: ort.InferenceSession, path: Path, contract: ModelContract
) -> dict[str, list[int | None]]:
    """The extra outputs a diagnostics graph declares in its metadata (name -> shape); {} for a plain one.

    Raises:
        ModelContractError: the list is not JSON, or names an output the graph lacks.
    """
    raw = contract.metadata.get(MetaKey.DIAGNOSTIC_OUTPUTS)
    if raw is None:
        return {}
    try:
        names = json.loads(raw)
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ModelContractError(
            f"model {path}: metadata {MetaKey.DIAGNOSTIC_OUTPUTS!r} = {raw!r} is not a JSON list of names"
        )
    shapes = {arg.name: list(arg.shape) for arg in session.get_outputs()}
    missing = [name for name in names if name not in shapes]
    if missing or contract.graph != "full":
        raise ModelContractError(
            f"model {path}: metadata {MetaKey.DIAGNOSTIC_OUTPUTS!r} names {missing or names}, which a "
            f"{contract.graph} graph's outputs {sorted(shapes)} do not hold"
        )
    return {name: shapes[name] for name in names}


class OnboardPolicy:
    """Drives an exported policy one camera frame at a time; holds the recurrent state between frames.

    Args:
        model_path: a full export (`drive export ... --out model.onnx`) or the vision graph of a split
            export (`model.vision.onnx`, which names its policy graph in its metadata).
        intra_op_num_threads: onnxruntime threads per graph call (1: predictable latency on a small
            board that also runs the rest of the stack).
        providers: onnxruntime execution providers (default: CPU).
        optimization_level: onnxruntime graph optimisation level (default: all).

    Raises:
        FileNotFoundError: the model (or a split export's policy graph) does not exist.
        ModelContractError: missing or inconsistent metadata, or graph inputs/outputs that disagree with
            it; the message names the file and the key or input.

    A diagnostics graph (`drive export` for the evaluation's ONNX engine) has extra outputs named in its
    metadata (`diagnostic_outputs`); each `act` then leaves them in `diagnostics` (name -> array).

    Example:
        >>> policy = OnboardPolicy("model.onnx")  # doctest: +SKIP
        >>> policy.reset()  # doctest: +SKIP
        >>> curvature_1pm = policy.act(frame_rgb_u8)  # doctest: +SKIP
    """

    def __init__(
        self,
        model_path: str | Path,
        intra_op_num_threads: int = 1,
        providers: list[str] | None = None,
        optimization_level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    ) -> None:
        path = Path(model_path)
        session = open_session(path, intra_op_num_threads, providers, optimization_level)
        contract = read_contract(path, session.get_modelmeta().custom_metadata_map)
        check_model_digest(path, path.read_bytes(), contract.metadata)
        self.contract = contract
        self._vision: ort.InferenceSession | None = None
        height, width, n = contract.input_height, contract.input_width, contract.state_size
        image_io = {IMAGE_INPUT: ("tensor(uint8)", [1, height, width, 3])}
        state_out = {CURVATURE_OUTPUT: ("tensor(float)", [1]), STATE_OUTPUT: ("tensor(float)", [1, n])}
        self.takes_elapsed = False
        """Whether the graph integrates over the elapsed time (`ELAPSED_INPUT`); else one period a call."""
        self._diagnostics = _diagnostic_outputs(session, path, contract)
        self.diagnostics: dict[str, np.ndarray] = {}
        if contract.graph == "full":
            self.takes_elapsed = _takes_elapsed(contract)
            extras = {name: ("tensor(float)", shape) for name, shape in self._diagnostics.items()}
            state_in = {STATE_INPUT: ("tensor(float)", [1, n]), **_elapsed_io(self.takes_elapsed)}
            _check_io(session, path, {**image_io, **state_in}, {**state_out, **extras})
            self._session = session
        elif contract.graph == "vision":
            self._vision, self._session, self.takes_elapsed = (
                session,
                *self._open_policy_graph(path, contract, intra_op_num_threads, providers, optimization_level),
            )
            features = self._session.get_inputs()
            width_f = next((a.shape[1] for a in features if a.name == FEATURES_INPUT), None)
            if not isinstance(width_f, int):
                raise ModelContractError(
                    f"model {path}: its policy graph has no static {FEATURES_INPUT!r} input"
                )
            _check_io(session, path, image_io, {FEATURES_OUTPUT: ("tensor(float)", [1, width_f])})
        else:
            vision = contract.metadata.get(MetaKey.VISION_GRAPH_FILE, "its vision graph")
            raise ModelContractError(
                f"model {path} is the policy half of a split export (it takes features, not images); "
                f"open {vision} (or the full model) instead"
            )
        self._state: np.ndarray = np.zeros((1, n), np.float32)
        self._image_shape = (height, width, 3)
        self._last_frame_s: float | None = None
        self.last_elapsed_s: float | None = None
        """The elapsed time the last `act` fed the graph, s (None before the first, or without the input)."""

    @staticmethod
    def _open_policy_graph(
        vision_path: Path,
        contract: ModelContract,
        threads: int,
        providers: list[str] | None,
        level: ort.GraphOptimizationLevel,
    ) -> tuple[ort.InferenceSession, bool]:
        name = contract.metadata.get(MetaKey.POLICY_GRAPH_FILE)
        if not name:
            raise ModelContractError(
                f"model {vision_path} is a vision graph without {MetaKey.POLICY_GRAPH_FILE!r}"
            )
        path = vision_path.parent / name
        session = open_session(path, threads, providers, level)
        policy = read_contract(path, session.get_modelmeta().custom_metadata_map)
        check_model_digest(path, path.read_bytes(), policy.metadata)
        for key in (
            MetaKey.POLICY_NAME,
            MetaKey.STATE_SIZE,
            MetaKey.WIRING_DIGEST,
            MetaKey.TRAIN_CONFIG_DIGEST,
        ):
            if policy.metadata[key] != contract.metadata[key]:
                raise ModelContractError(
                    f"split export mismatch: metadata {key!r} is "
                    f"{contract.metadata[key]!r} in {vision_path} but {policy.metadata[key]!r} in {path}"
                )
        n = policy.state_size
        features = {a.name: a for a in session.get_inputs()}.get(FEATURES_INPUT)
        width_f = features.shape[1] if features is not None else None
        timed = _takes_elapsed(policy)
        _check_io(
            session,
            path,
            {
                FEATURES_INPUT: ("tensor(float)", [1, width_f]),
                STATE_INPUT: ("tensor(float)", [1, n]),
                **_elapsed_io(timed),
            },
            {CURVATURE_OUTPUT: ("tensor(float)", [1]), STATE_OUTPUT: ("tensor(float)", [1, n])},
        )
        return session, timed

    @property
    def diagnostic_outputs(self) -> list[str]:
        """Names of a diagnostics graph's extra outputs ([] for a plain export), as `diagnostics` keys."""
        return list(self._diagnostics)

    @property
    def state(self) -> np.ndarray:
        """A copy of the current recurrent state, (1, N) float32."""
        state: np.ndarray = self._state.copy()
        return state

    def reset(self) -> None:
        """Zero the recurrent state (the start of a drive, or after a takeover)."""
        self._state = np.zeros_like(self._state)
        self._last_frame_s = None
        self.last_elapsed_s = None

    def act(self, image_rgb_u8: np.ndarray, elapsed_s: float | None = None) -> float:
        """One control step: a camera frame in, the curvature to drive out; the state moves on.

        Args:
            image_rgb_u8: (H, W, 3) uint8 RGB frame of the model's camera size (`contract.input_height`
                x `contract.input_width`); crop, resize and standardisation happen inside the graph.
            elapsed_s: seconds since the previous frame (e.g. from camera timestamps); None: measured on
                the monotonic clock between `act` calls (one period on the first frame after `reset`).
                Only a continuous-time graph (`takes_elapsed`) uses it; the others step one period.

        Returns:
            Road curvature, 1/m, left positive.
        """
        now = time.monotonic()
        if elapsed_s is None:
            last = self._last_frame_s
            elapsed_s = self.contract.control_period_s if last is None else now - last
        elif not (isinstance(elapsed_s, (int, float)) and math.isfinite(elapsed_s) and elapsed_s > 0):
            raise ValueError(f"OnboardPolicy.act: elapsed_s must be a finite number > 0 s, got {elapsed_s!r}")
        self._last_frame_s = now
        if (
            not isinstance(image_rgb_u8, np.ndarray)
            or image_rgb_u8.dtype != np.uint8
            or image_rgb_u8.shape != self._image_shape
        ):
            got = (
                f"shape {image_rgb_u8.shape} dtype {image_rgb_u8.dtype}"
                if isinstance(image_rgb_u8, np.ndarray)
                else type(image_rgb_u8).__name__
            )
            raise ValueError(
                f"OnboardPolicy.act: model {self.contract.path} takes {self._image_shape} uint8 RGB "
                f"frames, got {got}"
            )
        image = np.ascontiguousarray(image_rgb_u8)[None]
        timing: dict[str, np.ndarray] = {}
        if self.takes_elapsed:
            timing = {ELAPSED_INPUT: np.full((1, 1), elapsed_s, np.float32)}
            self.last_elapsed_s = float(elapsed_s)
        if self._diagnostics:
            names = [*_STEP_OUTPUTS, *self._diagnostics]
            curvature, state, *extras = self._session.run(
                names, {IMAGE_INPUT: image, STATE_INPUT: self._state, **timing}
            )
            self.diagnostics = dict(zip(self._diagnostics, extras))
        elif self._vision is None:
            curvature, state = self._session.run(
                _STEP_OUTPUTS, {IMAGE_INPUT: image, STATE_INPUT: self._state, **timing}
            )
        else:
            (features,) = self._vision.run([FEATURES_OUTPUT], {IMAGE_INPUT: image})
            curvature, state = self._session.run(
                _STEP_OUTPUTS, {FEATURES_INPUT: features, STATE_INPUT: self._state, **timing}
            )
        self._state = state
        return float(curvature[0])
