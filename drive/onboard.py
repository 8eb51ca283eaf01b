"""The onboard runtime: an exported ONNX policy driven frame by frame with onnxruntime alone.

    camera frame (H, W, 3) uint8 RGB ─► OnboardPolicy.act ─► curvature 1/m (left positive)
                                           │  image, state ─► model.onnx ─► curvature, next_state
                                           └── next_state kept for the next frame (reset() zeroes it)

This module is the deployment side of `drive export` and defines the contract both sides speak: the
graph's input and output names and the `metadata_props` keys (`MetaKey`). It imports numpy and
onnxruntime only (never torch, carla, or a project module that does): the onboard computer has neither.

The model carries its own contract: camera size, state width, control rate, units, and how the policy
was made (name, wiring digest, training config digest, preprocessing contract, parity at export).
Everything is checked when the model is opened, so a wrong or foreign file fails at start-up with the
file and the key named, never mid-drive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

MODEL_FORMAT_VERSION = 1
"""Version of the exported graph's interface and metadata; bump on any incompatible change."""

IMAGE_INPUT = "image"
"""(1, H, W, 3) uint8 RGB camera frame, the camera's own size (crop and resize happen in the graph)."""
STATE_INPUT = "state"
"""(1, N) float32 recurrent state (zeros at the start of a drive)."""
FEATURES_INPUT = "features"
"""(1, F) float32 sensory features: the input of a split export's policy graph."""
CURVATURE_OUTPUT = "curvature"
"""(1,) float32 road curvature, 1/m, left positive."""
STATE_OUTPUT = "next_state"
"""(1, N) float32 state to feed back on the next frame. (ONNX names a value once, so the output cannot
also be called `state`.)"""
FEATURES_OUTPUT = "features"
"""(1, F) float32: the output of a split export's vision graph."""

CURVATURE_UNITS = "1/m, left positive"
_STEP_OUTPUTS = [CURVATURE_OUTPUT, STATE_OUTPUT]


class MetaKey:
    """Keys of the exported model's `metadata_props` (all values are strings)."""

    FORMAT_VERSION = "liquid_drive.format_version"
    GRAPH = "graph"  # "full" (image, state -> curvature, next_state), "vision" or "policy" (split)
    POLICY_NAME = "policy_name"
    INPUT_HEIGHT = "input_height"  # camera rows, px
    INPUT_WIDTH = "input_width"  # camera columns, px
    INPUT_FORMAT = "input_format"
    STATE_SIZE = "state_size"  # width N of the graph's state input and output
    POLICY_STATE_SIZE = "policy_state_size"  # the policy's own state width (0: stateless CNN)
    STATE_NOTE = "state_note"
    FEATURE_SIZE = "feature_size"
    CONTROL_RATE_HZ = "control_rate_hz"
    STEP_ELAPSED_PERIODS = "step_elapsed_periods"  # elapsed time per graph call, in control periods
    CURVATURE_UNITS = "curvature_units"
    WIRING_DIGEST = "wiring_digest"  # "none" for heads without a wiring
    TRAIN_CONFIG_DIGEST = "train_config_digest"  # sha256[:16] of the sorted train_config JSON; "none"
    TRAIN_STEP = "train_step"
    PREPROCESS_CONTRACT = "preprocess_contract"  # PreprocessContract JSON
    PREPROCESS_IN_GRAPH = "preprocess_in_graph"  # what the graph does itself to the raw frame
    POLICY_CONFIG = "policy_config"  # PolicyConfig JSON
    TRAIN_CONFIG = "train_config"  # the resolved training config JSON ("null" when unknown)
    PRECISION = "precision"  # fp32, fp16 or int8
    PARITY_MAX_ABS_DIFF = "parity_max_abs_diff_1pm"  # PyTorch fp32 vs this graph, 1/m
    PARITY_TOLERANCE = "parity_tolerance_1pm"  # the bound the fp32 export was held to
    PARITY_STEPS = "parity_steps"
    PARITY_SOURCE = "parity_source"  # "synthetic" or "recording:<path>[start:stop]"
    INT8_CALIBRATION = "int8_calibration"  # on an int8 graph: the frames its ranges were calibrated on
    VISION_GRAPH_FILE = "vision_graph_file"  # on a split policy graph: its vision graph's file name
    POLICY_GRAPH_FILE = "policy_graph_file"  # on a split vision graph: its policy graph's file name
    EXPORTER = "exporter"


REQUIRED_KEYS = (
    MetaKey.FORMAT_VERSION,
    MetaKey.GRAPH,
    MetaKey.POLICY_NAME,
    MetaKey.INPUT_HEIGHT,
    MetaKey.INPUT_WIDTH,
    MetaKey.STATE_SIZE,
    MetaKey.CONTROL_RATE_HZ,
    MetaKey.CURVATURE_UNITS,
    MetaKey.WIRING_DIGEST,
    MetaKey.TRAIN_CONFIG_DIGEST,
    MetaKey.PREPROCESS_CONTRACT,
    MetaKey.PARITY_MAX_ABS_DIFF,
)
"""Keys every exported graph carries; a model without one is refused."""


class ModelContractError(ValueError):
    """An ONNX model does not carry the contract this runtime needs; the message names file and key."""


@dataclass(frozen=True)
class ModelContract:
    """What an exported model promises, read from its `metadata_props`.

    Attributes:
        path: the model file.
        graph: "full", "vision" or "policy".
        policy_name: registry name of the exported policy.
        input_height, input_width: camera frame size the graph takes, px.
        state_size: width N of the `state` input / `next_state` output.
        control_rate_hz: the rate the policy was trained and exported for (one graph call per period).
        wiring_digest, train_config_digest: provenance hashes ("none" when not applicable).
        preprocess_contract: the crop/resize contract, as a dict.
        parity_max_abs_diff_1pm: PyTorch vs this graph at export, 1/m.
        metadata: every metadata entry, raw.
    """

    path: Path
    graph: str
    policy_name: str
    input_height: int
    input_width: int
    state_size: int
    control_rate_hz: float
    wiring_digest: str
    train_config_digest: str
    preprocess_contract: dict[str, Any]
    parity_max_abs_diff_1pm: float
    metadata: dict[str, str]

    @property
    def control_period_s(self) -> float:
        """Seconds between two frames at the model's control rate."""
        return 1.0 / self.control_rate_hz


def read_contract(path: str | Path, metadata: dict[str, str]) -> ModelContract:
    """Parse and check a model's metadata; raise ModelContractError naming `path` and the key."""
    path = Path(path)
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise ModelContractError(
            f"model {path} lacks metadata key {missing[0]!r} (missing: {missing}); "
            "it was not written by `drive export`, or by an incompatible version"
        )

    def parse(key: str, kind: type, check: Any = None, what: str = "") -> Any:
        raw = metadata[key]
        try:
            value = json.loads(raw) if kind is dict else kind(raw)
        except (TypeError, ValueError):
            raise ModelContractError(
                f"model {path}: metadata {key!r} = {raw!r} is not a valid {kind.__name__}"
            ) from None
        if not isinstance(value, kind) or (check is not None and not check(value)):
            raise ModelContractError(
                f"model {path}: metadata {key!r} = {raw!r} must be {what or kind.__name__}"
            )
        return value

    version = parse(MetaKey.FORMAT_VERSION, int)
    if version != MODEL_FORMAT_VERSION:
        raise ModelContractError(
            f"model {path}: metadata {MetaKey.FORMAT_VERSION!r} is {version}, this runtime reads "
            f"{MODEL_FORMAT_VERSION}; re-export the checkpoint with this version's `drive export`"
        )
    graph = metadata[MetaKey.GRAPH]
    if graph not in ("full", "vision", "policy"):
        raise ModelContractError(
            f"model {path}: metadata {MetaKey.GRAPH!r} = {graph!r} is not full/vision/policy"
        )
    units = metadata[MetaKey.CURVATURE_UNITS]
    if units != CURVATURE_UNITS:
        raise ModelContractError(
            f"model {path}: metadata {MetaKey.CURVATURE_UNITS!r} = {units!r}, "
            f"this runtime expects {CURVATURE_UNITS!r}"
        )
    positive = lambda v: v > 0  # noqa: E731
    return ModelContract(
        path=path,
        graph=graph,
        policy_name=metadata[MetaKey.POLICY_NAME],
        input_height=parse(MetaKey.INPUT_HEIGHT, int, positive, "a positive int"),
        input_width=parse(MetaKey.INPUT_WIDTH, int, positive, "a positive int"),
        state_size=parse(MetaKey.STATE_SIZE, int, positive, "a positive int"),
        control_rate_hz=parse(MetaKey.CONTROL_RATE_HZ, float, positive, "a positive number"),
        wiring_digest=metadata[MetaKey.WIRING_DIGEST],
        train_config_digest=metadata[MetaKey.TRAIN_CONFIG_DIGEST],
        preprocess_contract=parse(MetaKey.PREPROCESS_CONTRACT, dict),
        parity_max_abs_diff_1pm=parse(MetaKey.PARITY_MAX_ABS_DIFF, float),
        metadata=dict(metadata),
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
    inputs: dict[str, tuple[str, list[int]]],
    outputs: dict[str, tuple[str, list[int]]],
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
            if arg.type != dtype or list(arg.shape) != shape:
                raise ModelContractError(
                    f"model {path}: {kind} {name!r} is {arg.type} {list(arg.shape)}, but the metadata "
                    f"promises {dtype} {shape}"
                )


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
        self.contract = contract
        self._vision: ort.InferenceSession | None = None
        height, width, n = contract.input_height, contract.input_width, contract.state_size
        image_io = {IMAGE_INPUT: ("tensor(uint8)", [1, height, width, 3])}
        state_out = {CURVATURE_OUTPUT: ("tensor(float)", [1]), STATE_OUTPUT: ("tensor(float)", [1, n])}
        if contract.graph == "full":
            _check_io(session, path, {**image_io, STATE_INPUT: ("tensor(float)", [1, n])}, state_out)
            self._session = session
        elif contract.graph == "vision":
            self._vision, self._session = (
                session,
                self._open_policy_graph(path, contract, intra_op_num_threads, providers, optimization_level),
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
        self._state = np.zeros((1, n), np.float32)
        self._image_shape = (height, width, 3)

    @staticmethod
    def _open_policy_graph(
        vision_path: Path,
        contract: ModelContract,
        threads: int,
        providers: list[str] | None,
        level: ort.GraphOptimizationLevel,
    ) -> ort.InferenceSession:
        name = contract.metadata.get(MetaKey.POLICY_GRAPH_FILE)
        if not name:
            raise ModelContractError(
                f"model {vision_path} is a vision graph without {MetaKey.POLICY_GRAPH_FILE!r}"
            )
        path = vision_path.parent / name
        session = open_session(path, threads, providers, level)
        policy = read_contract(path, session.get_modelmeta().custom_metadata_map)
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
        _check_io(
            session,
            path,
            {FEATURES_INPUT: ("tensor(float)", [1, width_f]), STATE_INPUT: ("tensor(float)", [1, n])},
            {CURVATURE_OUTPUT: ("tensor(float)", [1]), STATE_OUTPUT: ("tensor(float)", [1, n])},
        )
        return session

    @property
    def state(self) -> np.ndarray:
        """A copy of the current recurrent state, (1, N) float32."""
        return self._state.copy()

    def reset(self) -> None:
        """Zero the recurrent state (the start of a drive, or after a takeover)."""
        self._state = np.zeros_like(self._state)

    def act(self, image_rgb_u8: np.ndarray) -> float:
        """One control step: a camera frame in, the curvature to drive out; the state moves on.

        Args:
            image_rgb_u8: (H, W, 3) uint8 RGB frame of the model's camera size (`contract.input_height`
                x `contract.input_width`); crop, resize and standardisation happen inside the graph.

        Returns:
            Road curvature, 1/m, left positive.
        """
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
        if self._vision is None:
            curvature, state = self._session.run(
                _STEP_OUTPUTS, {IMAGE_INPUT: image, STATE_INPUT: self._state}
            )
        else:
            (features,) = self._vision.run([FEATURES_OUTPUT], {IMAGE_INPUT: image})
            curvature, state = self._session.run(
                _STEP_OUTPUTS, {FEATURES_INPUT: features, STATE_INPUT: self._state}
            )
        self._state = state
        return float(curvature[0])
