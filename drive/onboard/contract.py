"""The contract an exported model carries and the onboard runtime checks: graph input/output names and units,
and the `metadata_props` keys (`MetaKey`), parsed into a `ModelContract`.

`drive export` writes it (drive/export/) and `OnboardPolicy` reads it (`runtime`); both import it from here,
so the two sides cannot drift. Standard library only: it travels to the board with the runtime.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_FORMAT_VERSION = 1
"""Version of the exported graph's interface and metadata; bump on any incompatible change."""

IMAGE_INPUT = "image"
"""(1, H, W, 3) uint8 RGB camera frame, the camera's own size (crop and resize happen in the graph)."""
STATE_INPUT = "state"
"""(1, N) float32 recurrent state (zeros at the start of a drive)."""
ELAPSED_INPUT = "elapsed_s"
"""(1, 1) float32 seconds since the previous frame: an input of continuous-time heads' graphs only (LTC,
CfC); metadata `elapsed_input` names it, or says "none" for a head that steps one period per call."""
ELAPSED_UNITS = "s"
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
    ELAPSED_INPUT = "elapsed_input"  # "elapsed_s" (the input's name) or "none" (discrete-time head)
    ELAPSED_UNITS = "elapsed_units"  # "s": the elapsed input is in seconds
    ELAPSED_NOTE = "elapsed_note"  # what the graph does with elapsed time, in words
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
    DIAGNOSTIC_OUTPUTS = "diagnostic_outputs"  # JSON list: extra float outputs of a diagnostics graph
    EXPORTER = "exporter"
    MODEL_DIGEST = "model_sha256"  # sha256 of the graph and weights: every model field but metadata


_METADATA_FIELD = 14
"""Field number of `metadata_props` in onnx's ModelProto (onnx.proto); the digest skips it."""


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
    MetaKey.MODEL_DIGEST,
)
"""Keys every exported graph carries; a model without one is refused."""


def model_digest(model_bytes: bytes) -> str:
    """sha256 (hex) of a serialized ONNX model's fields other than metadata_props: graph, weights (when
    stored inside the file), opsets, IR version, producer and doc string.

    The metadata is left out so the digest can live in it. Parses only the protobuf wire format of the
    top-level message (standard library; the board has no `onnx` package).

    Raises:
        ValueError: the bytes are not a well-formed protobuf message.
    """
    digest = hashlib.sha256()
    pos, end = 0, len(model_bytes)
    while pos < end:
        start = pos
        key, pos = _varint(model_bytes, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(model_bytes, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _varint(model_bytes, pos)
            pos += length
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} at byte {start}")
        if pos > end:
            raise ValueError(f"truncated protobuf field {field} at byte {start}")
        if field != _METADATA_FIELD:
            digest.update(model_bytes[start:pos])
    return digest.hexdigest()


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError(f"truncated or overlong varint at byte {pos}")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


def check_model_digest(path: str | Path, model_bytes: bytes, metadata: dict[str, str]) -> None:
    """Refuse a model whose graph or weights differ from what `drive export` wrote (bit flips, edits).

    Raises:
        ModelContractError: naming the file, when the digest is missing or does not match.
    """
    recorded = metadata.get(MetaKey.MODEL_DIGEST)
    if recorded is None:
        raise ModelContractError(
            f"model {path} lacks metadata key {MetaKey.MODEL_DIGEST!r}; re-export it with `drive export`"
        )
    try:
        actual = model_digest(model_bytes)
    except ValueError as err:
        raise ModelContractError(f"model {path} is not a well-formed ONNX file: {err}") from None
    if actual != recorded:
        raise ModelContractError(
            f"model {path}: its graph or weights changed since export (sha256 {actual[:16]}..., the "
            f"metadata records {recorded[:16]}...); the file is damaged or edited, re-export it"
        )


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

    @property
    def elapsed_input(self) -> str | None:
        """The graph's elapsed-time input (`ELAPSED_INPUT`, seconds), or None: it steps one period per
        call (a discrete-time head, or a model exported before the input existed)."""
        name = self.metadata.get(MetaKey.ELAPSED_INPUT, "none")
        return None if name == "none" else name


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
