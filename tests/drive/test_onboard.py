"""Onboard runtime: drives an export like PyTorch, refuses foreign or inconsistent models, needs no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from drive.export.parity import synthetic_frames
from drive.export.pipeline import export_policy
from drive.onboard.contract import MetaKey, ModelContractError
from drive.onboard.runtime import OnboardPolicy
from policies.registry import build_policy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An ncp-ltc policy (output scale raised so curvatures are O(0.1) 1/m) and its split export."""
    torch.manual_seed(0)
    policy = build_policy("ncp-ltc").eval()
    policy.curvature_scale_1pm = 1.0
    out = tmp_path_factory.mktemp("onboard") / "model.onnx"
    result = export_policy(policy, out, parity_steps=8, split=True)
    return policy, result.paths


@pytest.fixture(scope="module")
def frames():
    return synthetic_frames(16, 78, 200, seed=7)


def _torch_curvatures(policy, frames: np.ndarray) -> list[float]:
    out = []
    with torch.no_grad():
        state = policy.initial_state(1)
        for frame in frames:
            curvature, state = policy.step(torch.from_numpy(frame[None]), state)
            out.append(float(curvature[0]))
    return out


def _edited(path: Path, target: Path, metadata: dict[str, str | None]) -> Path:
    """A copy of model `path` at `target` with metadata entries replaced (None: removed)."""
    model = onnx.load(path)
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in metadata.items():
        if value is None:
            props.pop(key)
        else:
            props[key] = value
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, target)
    return target


def test_act_drives_like_pytorch_and_reset_restarts(exported, frames):
    policy, paths = exported
    onboard = OnboardPolicy(paths["full"])
    expected = _torch_curvatures(policy, frames)
    got = [onboard.act(frame, 0.05) for frame in frames]  # one period each, as PyTorch's step
    assert max(abs(e) for e in expected) > 1e-2
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert np.abs(onboard.state).max() > 0
    onboard.reset()
    assert np.all(onboard.state == 0)
    assert [onboard.act(frame, 0.05) for frame in frames[:4]] == got[
        :4
    ]  # same start, same drive, bit for bit


def test_state_carries_memory_between_frames(exported, frames):
    onboard = OnboardPolicy(exported[1]["full"])
    first = onboard.act(frames[0])
    again = onboard.act(frames[0])
    assert first != again  # same frame, different state, different answer


def test_contract_is_read_from_metadata(exported):
    policy, paths = exported
    contract = OnboardPolicy(paths["full"]).contract
    assert (contract.input_height, contract.input_width, contract.state_size) == (78, 200, 19)
    assert contract.policy_name == "ncp-ltc" and contract.graph == "full"
    assert contract.control_period_s == pytest.approx(0.05)
    assert contract.wiring_digest == policy.wiring.digest()
    assert contract.preprocess_contract == policy.config.contract.to_dict()
    assert 0 <= contract.parity_max_abs_diff_1pm <= 1e-4


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((200, 78, 3), np.uint8),
        np.zeros((1, 78, 200, 3), np.uint8),
        np.zeros((78, 200, 3), np.float32),
        np.zeros((78, 200, 4), np.uint8),
        [[0]],
    ],
    ids=["transposed", "batched", "float", "rgba", "list"],
)
def test_wrong_frame_is_a_clear_error(exported, image):
    onboard = OnboardPolicy(exported[1]["full"])
    with pytest.raises(ValueError, match=r"takes \(78, 200, 3\) uint8 RGB frames, got"):
        onboard.act(image)


def test_missing_metadata_names_the_file_and_key(exported, tmp_path):
    path = _edited(exported[1]["full"], tmp_path / "no_height.onnx", {MetaKey.INPUT_HEIGHT: None})
    with pytest.raises(ModelContractError, match=r"no_height\.onnx lacks metadata key 'input_height'"):
        OnboardPolicy(path)


def test_foreign_model_without_metadata_is_refused(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(
        ModelContractError, match=r"foreign\.onnx lacks metadata key 'liquid_drive\.format_version'"
    ):
        OnboardPolicy(path)


def test_graph_of_the_wrong_shape_is_refused(exported, tmp_path):
    full = exported[1]["full"]
    bigger = _edited(
        full, tmp_path / "camera.onnx", {MetaKey.INPUT_HEIGHT: "120", MetaKey.INPUT_WIDTH: "320"}
    )
    with pytest.raises(
        ModelContractError, match=r"camera\.onnx: input 'image' is tensor\(uint8\) \[1, 78, 200, 3\]"
    ):
        OnboardPolicy(bigger)
    state = _edited(full, tmp_path / "state.onnx", {MetaKey.STATE_SIZE: "12"})
    with pytest.raises(
        ModelContractError,
        match=r"state\.onnx: input 'state' is tensor\(float\) \[1, 19\], but the metadata promises "
        r"tensor\(float\) \[1, 12\]",
    ):
        OnboardPolicy(state)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (MetaKey.STATE_SIZE, "nineteen", r"'state_size' = 'nineteen' is not a valid int"),
        (MetaKey.STATE_SIZE, "0", r"'state_size' = '0' must be a positive int"),
        (MetaKey.FORMAT_VERSION, "99", r"is 99, this runtime reads 1; re-export"),
        (MetaKey.CURVATURE_UNITS, "rad", r"'curvature_units' = 'rad'"),
        (MetaKey.GRAPH, "both", r"'graph' = 'both' is not full/vision/policy"),
        (MetaKey.PREPROCESS_CONTRACT, "{", r"'preprocess_contract' = '\{' is not a valid dict"),
    ],
)
def test_bad_metadata_values_are_named(exported, tmp_path, key, value, message):
    path = _edited(exported[1]["full"], tmp_path / "bad.onnx", {key: value})
    with pytest.raises(ModelContractError, match=message):
        OnboardPolicy(path)


def test_unreadable_or_missing_files(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(ModelContractError, match=r"garbage\.onnx cannot be loaded by onnxruntime"):
        OnboardPolicy(garbage)
    with pytest.raises(FileNotFoundError, match="ONNX model not found"):
        OnboardPolicy(tmp_path / "absent.onnx")


def test_split_policy_half_alone_is_refused(exported):
    with pytest.raises(ModelContractError, match=r"policy half of a split export.*open model\.vision\.onnx"):
        OnboardPolicy(exported[1]["policy"])


def test_split_halves_from_different_exports_are_refused(exported, tmp_path):
    import shutil

    paths = exported[1]
    shutil.copy(paths["vision"], tmp_path / "model.vision.onnx")
    _edited(paths["policy"], tmp_path / "model.policy.onnx", {MetaKey.WIRING_DIGEST: "0123456789abcdef"})
    with pytest.raises(ModelContractError, match=r"split export mismatch: metadata 'wiring_digest'"):
        OnboardPolicy(tmp_path / "model.vision.onnx")
    (tmp_path / "model.policy.onnx").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.policy\.onnx"):
        OnboardPolicy(tmp_path / "model.vision.onnx")


def test_threads_are_configurable(exported, frames):
    with pytest.raises(ValueError, match="intra_op_num_threads must be a positive int"):
        OnboardPolicy(exported[1]["full"], intra_op_num_threads=0)
    one, two = OnboardPolicy(exported[1]["full"]), OnboardPolicy(exported[1]["full"], intra_op_num_threads=2)
    for frame in frames[:3]:
        assert two.act(frame, 0.05) == pytest.approx(one.act(frame, 0.05), abs=1e-6)


# Run in a fresh interpreter where importing torch or carla raises, as on the onboard computer.
_NO_TORCH = """
import importlib.abc, json, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "carla"):
            raise ImportError(f"{name} is not installed on the onboard computer")
        return None

sys.meta_path.insert(0, Blocked())
for name in ("torch", "carla"):
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"the blocker failed: {name} imported")

import numpy as np
from drive.onboard.runtime import OnboardPolicy

frames = np.load(sys.argv[1])
policy = OnboardPolicy(sys.argv[2])
curvatures = [policy.act(frame, 0.05) for frame in frames]
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "carla"))
print(json.dumps({"curvatures": curvatures, "heavy_modules": heavy}))
"""


def test_runs_where_torch_and_carla_cannot_be_imported(exported, frames, tmp_path):
    policy, paths = exported
    np.save(tmp_path / "frames.npy", frames)
    done = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, str(tmp_path / "frames.npy"), str(paths["full"])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["heavy_modules"] == []
    np.testing.assert_allclose(report["curvatures"], _torch_curvatures(policy, frames), atol=1e-4, rtol=0)
