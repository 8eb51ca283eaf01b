"""The elapsed-time input of continuous-time heads' graphs (issue 17): parity with PyTorch at irregular
frame times, exactness at one period, the contract's keys, and `OnboardPolicy.act(frame, elapsed_s)`."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from drive.export.graphs import CONTROL_PERIOD_S, OneStepGraph, to_onnx
from drive.export.parity import (
    full_step,
    onnx_rollout,
    synthetic_frames,
    torch_rollout,
)
from drive.export.pipeline import export_policy
from drive.onboard import runtime
from drive.onboard.contract import ELAPSED_INPUT, MetaKey
from drive.onboard.runtime import OnboardPolicy
from policies.driving_policy import DrivingPolicy, PolicyConfig
from policies.registry import build_policy

STEPS = 12
CONTINUOUS = ["ncp-ltc", "ncp-cfc", "ctrnn"]
DISCRETE = ["lstm", "cnn"]


def _policy(name: str) -> DrivingPolicy:
    """A fresh policy; output scale 1 so untrained curvatures are O(0.1) 1/m, not O(1e-4)."""
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(name=name)).eval()
    policy.curvature_scale_1pm = 1.0
    return policy


def _inputs(path) -> dict[str, tuple[int, list[int]]]:
    model = onnx.load(path)
    return {
        i.name: (i.type.tensor_type.elem_type, [d.dim_value for d in i.type.tensor_type.shape.dim])
        for i in model.graph.input
    }


@pytest.mark.parametrize("name", CONTINUOUS)
def test_continuous_head_graph_integrates_irregular_elapsed_times_like_pytorch(name, tmp_path):
    policy = _policy(name)
    export_policy(policy, tmp_path / "m.onnx", parity_steps=STEPS)
    assert _inputs(tmp_path / "m.onnx")[ELAPSED_INPUT] == (onnx.TensorProto.FLOAT, [1, 1])
    meta = {p.key: p.value for p in onnx.load(tmp_path / "m.onnx").metadata_props}
    assert meta[MetaKey.ELAPSED_INPUT] == ELAPSED_INPUT and meta[MetaKey.ELAPSED_UNITS] == "s"
    frames = (synthetic_frames(40, policy.config.camera_height, policy.config.camera_width),)
    rng = np.random.default_rng(7)
    elapsed = (rng.uniform(0.5, 3.0, len(frames[0])) * CONTROL_PERIOD_S).astype(np.float32)
    ref_c, ref_s = torch_rollout(policy, frames[0], elapsed)
    got_c, got_s = onnx_rollout(full_step(onnx.load(tmp_path / "m.onnx")), frames[0], ref_s.shape[1], elapsed)
    assert np.max(np.abs(got_c - ref_c)) <= 1e-4
    assert np.max(np.abs(got_s - ref_s)) <= 1e-4
    # The elapsed time matters: the same frames at one period give another trajectory.
    one_c, _ = torch_rollout(policy, frames[0])
    assert np.max(np.abs(one_c - ref_c)) > 1e-3


@pytest.mark.parametrize("name", CONTINUOUS)
def test_one_period_reproduces_the_fixed_step_graph_exactly(name, tmp_path):
    policy = _policy(name)
    frames = synthetic_frames(20, policy.config.camera_height, policy.config.camera_width)
    n = policy.state_size
    image, state = torch.from_numpy(frames[:1].copy()), torch.zeros(1, n)
    fixed = to_onnx(OneStepGraph(policy), (image, state), ["image", "state"], ["curvature", "next_state"])
    timed = to_onnx(
        OneStepGraph(policy, CONTROL_PERIOD_S),
        (image, state, torch.full((1, 1), CONTROL_PERIOD_S)),
        ["image", "state", ELAPSED_INPUT],
        ["curvature", "next_state"],
    )
    old_c, old_s = onnx_rollout(full_step(fixed), frames, n)
    one_period = np.full(len(frames), CONTROL_PERIOD_S, np.float32)
    new_c, new_s = onnx_rollout(full_step(timed), frames, n, one_period)
    np.testing.assert_array_equal(new_c, old_c)
    np.testing.assert_array_equal(new_s, old_s)


@pytest.mark.parametrize("name", DISCRETE)
def test_discrete_heads_have_no_elapsed_input_and_say_so(name, tmp_path):
    export_policy(_policy(name), tmp_path / "m.onnx", parity_steps=4)
    assert ELAPSED_INPUT not in _inputs(tmp_path / "m.onnx")
    meta = {p.key: p.value for p in onnx.load(tmp_path / "m.onnx").metadata_props}
    assert meta[MetaKey.ELAPSED_INPUT] == "none"
    assert "discrete-time" in meta[MetaKey.ELAPSED_NOTE]
    onboard = OnboardPolicy(tmp_path / "m.onnx")
    assert not onboard.takes_elapsed
    frame = synthetic_frames(1, onboard.contract.input_height, onboard.contract.input_width)[0]
    assert onboard.act(frame, elapsed_s=0.1) == OnboardPolicy(tmp_path / "m.onnx").act(frame, elapsed_s=0.3)


def test_onboard_act_measures_the_monotonic_time_when_none_is_given(tmp_path, monkeypatch):
    policy = _policy("ncp-ltc")
    export_policy(policy, tmp_path / "m.onnx", parity_steps=4, split=True)
    frames = synthetic_frames(4, policy.config.camera_height, policy.config.camera_width)
    clock = iter([100.0, 100.13, 100.2, 100.5])
    monkeypatch.setattr(runtime.time, "monotonic", lambda: next(clock))
    measured = OnboardPolicy(tmp_path / "m.onnx")
    assert measured.takes_elapsed
    got = []
    for frame in frames:
        got.append(measured.act(frame))
        assert measured.last_elapsed_s is not None
    monkeypatch.undo()
    # First frame: one period; then the clock's differences, which the explicit argument reproduces.
    explicit = OnboardPolicy(tmp_path / "m.onnx")
    elapsed = [CONTROL_PERIOD_S, 0.13, 0.2 - 0.13, 0.3]
    want = [explicit.act(frame, elapsed_s=e) for frame, e in zip(frames, elapsed)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # The split export (vision + policy graph) takes the elapsed time too, and agrees with the full one.
    split = OnboardPolicy(tmp_path / "m.vision.onnx")
    assert split.takes_elapsed
    split_c = [split.act(frame, elapsed_s=e) for frame, e in zip(frames, elapsed)]
    np.testing.assert_allclose(split_c, want, atol=1e-5)
    with pytest.raises(ValueError, match="elapsed_s must be a finite number > 0"):
        explicit.act(frames[0], elapsed_s=-0.05)
