"""ONNX export: each policy exports and matches PyTorch; metadata is the contract; failures write nothing."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from common.strict_config import from_dict
from drive.cli import main as drive_main
from drive.export.graphs import OneStepGraph, to_onnx
from drive.export.optimize import fuse_pad_into_conv
from drive.export.parity import calibration_frames, recorded_frames, synthetic_frames
from drive.export.pipeline import (
    PARITY_TOLERANCE_1PM,
    ExportError,
    config_digest,
    export_checkpoint,
    export_policy,
)
from drive.onboard.contract import MetaKey
from drive.onboard.runtime import OnboardPolicy
from policies.checkpoint import save_checkpoint
from policies.driving_policy import DrivingPolicy, PolicyConfig
from policies.registry import build_policy, policy_names

STEPS = 12  # parity frames in tests: enough for the state to move, small enough to stay fast


def _policy(config: PolicyConfig) -> DrivingPolicy:
    """A fresh policy; its output scale raised so untrained curvatures are O(0.1) 1/m, not O(1e-4)."""
    policy = build_policy(config).eval()
    policy.curvature_scale_1pm = 1.0
    return policy


def _ort_rollout(path, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Curvatures and states of a full graph over frames, run here with plain onnxruntime."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    width = session.get_inputs()[1].shape[1]
    state = np.zeros((1, width), np.float32)
    curvatures, states = [], []
    # A continuous-time head's graph also takes the elapsed time: one period, as PyTorch's default step.
    timed = {"elapsed_s": np.full((1, 1), 0.05, np.float32)} if len(session.get_inputs()) == 3 else {}
    for frame in frames:
        feeds = {"image": frame[None], "state": state, **timed}
        curvature, state = session.run(["curvature", "next_state"], feeds)
        curvatures.append(curvature[0])
        states.append(state[0])
    return np.asarray(curvatures), np.asarray(states)


def _torch_rollout(policy: DrivingPolicy, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    curvatures, states = [], []
    with torch.no_grad():
        state = policy.initial_state(1)
        for frame in frames:
            curvature, state = policy.step(torch.from_numpy(frame[None]), state)
            curvatures.append(float(curvature[0]))
            states.append(state[0].numpy().copy())
    return np.asarray(curvatures), np.asarray(states).reshape(len(frames), -1)


@pytest.mark.parametrize("name", policy_names())
def test_every_registry_policy_exports_and_matches_pytorch(name, tmp_path):
    policy = _policy(PolicyConfig(name=name))
    result = export_policy(policy, tmp_path / "m.onnx", parity_steps=STEPS)
    model = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain: o.version for o in model.opset_import}[""] >= 17
    meta = {p.key: p.value for p in model.metadata_props}
    assert result.parity.max_abs_diff_1pm <= PARITY_TOLERANCE_1PM
    assert float(meta[MetaKey.PARITY_MAX_ABS_DIFF]) == result.parity.max_abs_diff_1pm
    assert meta[MetaKey.POLICY_NAME] == name
    assert int(meta[MetaKey.STATE_SIZE]) == max(policy.state_size, 1)
    assert int(meta[MetaKey.POLICY_STATE_SIZE]) == policy.state_size
    wiring = policy.wiring
    assert meta[MetaKey.WIRING_DIGEST] == (wiring.digest() if wiring is not None else "none")

    # Independently of the export's own check: drive the file with onnxruntime and compare.
    frames = synthetic_frames(STEPS, 78, 200, seed=3)
    onnx_c, onnx_s = _ort_rollout(tmp_path / "m.onnx", frames)
    torch_c, torch_s = _torch_rollout(policy, frames)
    assert np.abs(torch_c).max() > 1e-3  # the comparison below is not between two near-zero signals
    np.testing.assert_allclose(onnx_c, torch_c, atol=PARITY_TOLERANCE_1PM, rtol=0)
    if policy.state_size:
        np.testing.assert_allclose(onnx_s, torch_s, atol=1e-4, rtol=0)
        assert not np.allclose(torch_s[1], torch_s[-1])  # the state really evolves over the sequence
    else:
        assert np.all(onnx_s == 0)  # the stateless CNN's dummy state passes through


def test_checkpoint_export_carries_the_contract(tmp_path):
    policy = _policy(PolicyConfig(name="ncp-ltc", wiring_seed=5))
    train_config = {"lr": 3e-4, "sequence_length": 16, "data": {"recordings": ["a", "b"]}}
    ckpt = save_checkpoint(tmp_path / "c.pt", policy, step=1234, train_config=train_config)
    result = export_checkpoint(ckpt, tmp_path / "m.onnx", parity_steps=STEPS)
    meta = {p.key: p.value for p in onnx.load(tmp_path / "m.onnx").metadata_props}
    assert meta == result.metadata
    assert meta[MetaKey.TRAIN_CONFIG_DIGEST] == config_digest(train_config)
    assert config_digest(train_config) != config_digest({**train_config, "lr": 1e-3})
    assert json.loads(meta[MetaKey.TRAIN_CONFIG]) == train_config
    assert meta[MetaKey.TRAIN_STEP] == "1234"
    assert from_dict(PolicyConfig, json.loads(meta[MetaKey.POLICY_CONFIG])) == policy.config
    assert json.loads(meta[MetaKey.PREPROCESS_CONTRACT]) == policy.config.contract.to_dict()
    assert meta[MetaKey.CONTROL_RATE_HZ] == "20.0" and meta[MetaKey.CURVATURE_UNITS] == "1/m, left positive"
    assert meta[MetaKey.INPUT_HEIGHT] == "78" and meta[MetaKey.INPUT_WIDTH] == "200"
    assert meta[MetaKey.PARITY_STEPS] == str(STEPS) and meta[MetaKey.PARITY_SOURCE] == "synthetic"
    # The checkpoint's policy (curvature scale from its config) is the one exported.
    assert meta[MetaKey.WIRING_DIGEST] == policy.wiring.digest()


def test_other_camera_size_is_cropped_and_resized_inside_the_graph(tmp_path):
    config = PolicyConfig(name="ncp-ltc", camera_height=120, camera_width=320, crop_top_frac=0.25)
    policy = _policy(config)
    result = export_policy(policy, tmp_path / "m.onnx", parity_steps=STEPS)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    image = session.get_inputs()[0]
    assert image.type == "tensor(uint8)" and image.shape == [1, 120, 320, 3]
    assert result.parity.max_abs_diff_1pm <= PARITY_TOLERANCE_1PM
    frames = synthetic_frames(6, 120, 320, seed=1)
    onnx_c, _ = _ort_rollout(tmp_path / "m.onnx", frames)
    torch_c, _ = _torch_rollout(policy, frames)
    np.testing.assert_allclose(onnx_c, torch_c, atol=PARITY_TOLERANCE_1PM, rtol=0)


def test_split_graphs_chain_to_the_full_graph(tmp_path):
    policy = _policy(PolicyConfig(name="ncp-ltc"))
    result = export_policy(policy, tmp_path / "m.onnx", parity_steps=STEPS, split=True)
    assert set(result.paths) == {"full", "vision", "policy"}
    assert result.split_parity.max_abs_diff_1pm <= PARITY_TOLERANCE_1PM
    vision = ort.InferenceSession(str(result.paths["vision"]), providers=["CPUExecutionProvider"])
    frame = synthetic_frames(1, 78, 200, seed=2)
    (features,) = vision.run(["features"], {"image": frame})
    with torch.no_grad():
        expected = policy.features(torch.from_numpy(frame)).numpy()
    np.testing.assert_allclose(features, expected, atol=1e-5, rtol=1e-5)
    head_inputs = ort.InferenceSession(
        str(result.paths["policy"]), providers=["CPUExecutionProvider"]
    ).get_inputs()
    assert [(i.name, i.shape) for i in head_inputs] == [
        ("features", [1, 32]),
        ("state", [1, 19]),
        ("elapsed_s", [1, 1]),  # a continuous-time head: it integrates over the time between frames
    ]
    # The onboard runtime opens the vision graph, finds its policy graph, and drives like the full one.
    frames = synthetic_frames(8, 78, 200, seed=4)
    full, split = OnboardPolicy(result.paths["full"]), OnboardPolicy(result.paths["vision"])
    for frame in frames:  # one period each (left to the clock, the two would measure different times)
        assert split.act(frame, 0.05) == pytest.approx(full.act(frame, 0.05), abs=1e-6)


def test_fp16_and_int8_variants_report_their_cost(tmp_path):
    policy = _policy(PolicyConfig(name="ncp-ltc"))
    result = export_policy(policy, tmp_path / "m.onnx", parity_steps=STEPS, fp16=True, int8=True)
    assert set(result.variants) == {"fp16", "int8"}
    for name, cost in result.variants.items():
        model = onnx.load(result.paths[name])
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta[MetaKey.PRECISION] == name
        assert float(meta[MetaKey.PARITY_MAX_ABS_DIFF]) == cost.max_abs_diff_1pm
        # Reduced precision costs something, but a bounded amount under the curvature's scale.
        bound = {"fp16": 0.1, "int8": 0.5}[name]
        assert 0 < cost.max_abs_diff_1pm < bound * cost.curvature_rms_1pm
        assert cost.rms_diff_1pm < bound / 2 * cost.curvature_rms_1pm
        onboard = OnboardPolicy(result.paths[name])  # same interface as the fp32 graph
        assert np.isfinite(onboard.act(synthetic_frames(1, 78, 200)[0]))
    int8 = onnx.load(result.paths["int8"])
    meta = {p.key: p.value for p in int8.metadata_props}
    assert meta[MetaKey.INT8_CALIBRATION] == "synthetic (seed 1), 256 frames"
    # Static QDQ: every convolution's weights are int8 initializers, each feeding a DequantizeLinear; the
    # first convolution reads a SpaceToDepth of the image (12 channels); everything outside the
    # perception stays float.
    dequantised = {n.output[0]: n.input[0] for n in int8.graph.node if n.op_type == "DequantizeLinear"}
    int8_weights = {i.name for i in int8.graph.initializer if i.data_type == onnx.TensorProto.INT8}
    convs = [n for n in int8.graph.node if n.op_type == "Conv"]
    assert len(convs) == 5
    assert all(dequantised.get(conv.input[1]) in int8_weights for conv in convs)
    assert [n.op_type for n in int8.graph.node].count("SpaceToDepth") == 1
    quantised = [n.input[0] for n in int8.graph.node if n.op_type == "QuantizeLinear"]
    assert quantised and all(name.startswith("/perception/") or "s2d" in name for name in quantised)
    # Each convolution's ReLU is folded into it: its output goes straight to its QuantizeLinear, and the
    # only ReLU left is the dense layer's.
    assert sum(n.op_type == "Relu" for n in int8.graph.node) == 1
    quantize_inputs = {n.input[0] for n in int8.graph.node if n.op_type == "QuantizeLinear"}
    assert all(conv.output[0] in quantize_inputs for conv in convs)
    initializers = onnx.load(result.paths["fp16"]).graph.initializer
    assert {i.data_type for i in initializers if i.dims} >= {onnx.TensorProto.FLOAT16}
    assert "fp16 accuracy cost" in result.summary()
    assert "int8 calibrated on: synthetic (seed 1), 256 frames" in result.summary()


class _DivergesWhenTraced(DrivingPolicy):
    """A policy whose graph differs from its eager self: what the parity check exists to catch."""

    def step(self, images_u8, state, elapsed_s=1.0):
        curvature, state = super().step(images_u8, state, elapsed_s)
        if torch.jit.is_tracing():
            curvature = curvature + 1e-3
        return curvature, state


def test_parity_failure_fails_the_export_and_writes_nothing(tmp_path):
    base = build_policy("lstm")
    policy = _DivergesWhenTraced(base.config, base.perception, base.head).eval()
    with pytest.raises(ExportError, match=r"parity failed.*0\.001"):
        export_policy(policy, tmp_path / "m.onnx", parity_steps=4, split=True, int8=True)
    assert list(tmp_path.iterdir()) == []


def test_export_time_optimisation_fuses_pads_and_keeps_the_numbers(tmp_path):
    policy = _policy(PolicyConfig(name="ncp-ltc"))
    image = torch.from_numpy(synthetic_frames(1, 78, 200))
    state = torch.zeros(1, 19)
    raw = to_onnx(
        OneStepGraph(policy), (image, state), ["image", "state"], ["curvature", "next_state"], False
    )
    optimized = to_onnx(OneStepGraph(policy), (image, state), ["image", "state"], ["curvature", "next_state"])
    raw_ops = [n.op_type for n in raw.graph.node]
    ops = [n.op_type for n in optimized.graph.node]
    assert raw_ops.count("Pad") == 5 and "Pad" not in ops and "Softplus" not in ops
    assert len(ops) < len(raw_ops)
    assert {entry.domain for entry in optimized.opset_import} <= {"", "ai.onnx"}
    onnx.checker.check_model(optimized, full_check=True)
    feed = {"image": image.numpy(), "state": np.random.default_rng(0).normal(size=(1, 19)).astype(np.float32)}

    def run(model: onnx.ModelProto) -> list[np.ndarray]:
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, feed
        )

    for a, b in zip(run(raw), run(optimized)):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-6)


def test_pad_fusion_handles_asymmetric_padding():
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    pads = numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 0, 2, 1], np.int64), "pads")
    graph = helper.make_graph(
        [
            helper.make_node("Pad", ["x", "pads"], ["xp"], mode="constant"),
            helper.make_node("Conv", ["xp", "w"], ["y"], strides=[2, 2], pads=[0, 1, 0, 0]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 9, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [weight, pads],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.normal(size=(1, 3, 9, 10)).astype(np.float32)
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )
    assert fuse_pad_into_conv(model) == 1
    (conv,) = model.graph.node
    assert list(helper.get_attribute_value(conv.attribute[-1])) == [1, 1, 2, 1]  # [top, left, bottom, right]
    after = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )
    np.testing.assert_allclose(after[0], before[0], atol=1e-5)


def test_synthetic_frames_vary_smoothly():
    frames = synthetic_frames(60, 78, 200).astype(np.float32)
    assert frames.shape == (60, 78, 200, 3)
    step = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    far = np.abs(frames[25] - frames[0]).mean()
    assert step.max() < far / 3  # neighbours are alike, the sequence as a whole moves
    np.testing.assert_array_equal(synthetic_frames(3, 78, 200), synthetic_frames(3, 78, 200))


def test_parity_on_a_recording(tmp_path):
    from recordings.synthetic import write_synthetic_episode

    episode = write_synthetic_episode(tmp_path / "ep", 10, image_shape=(78, 200, 3))
    policy = _policy(PolicyConfig(name="ncp-ltc"))
    result = export_policy(policy, tmp_path / "m.onnx", parity_steps=8, frames_dir=episode)
    assert result.parity.source == f"recording:{episode}[0:8]" and result.parity.steps == 8
    with pytest.raises(ValueError, match="has 10 frames; the parity check needs 20"):
        recorded_frames(episode, 20, 78, 200)
    with pytest.raises(
        ValueError, match=r"holds \(78, 200, 3\) uint8 frames, but the policy's camera is \(120"
    ):
        recorded_frames(episode, 5, 120, 320)


def test_int8_calibration_frames_come_from_after_the_parity_frames(tmp_path):
    from recordings.synthetic import write_synthetic_episode

    episode = write_synthetic_episode(tmp_path / "ep", 30, image_shape=(78, 200, 3))
    everything = recorded_frames(episode, 30, 78, 200)
    frames, label = calibration_frames(episode, 5, 78, 200, skip=10)
    # Spread evenly over frames 10..29, the first 10 (the parity frames) left out.
    np.testing.assert_array_equal(frames, everything[[10, 15, 20, 24, 29]])
    assert label == f"recording:{episode}, 5 of frames 10..30"
    frames, label = calibration_frames(episode, 100, 78, 200, skip=10)
    np.testing.assert_array_equal(frames, everything[10:])
    # A recording no longer than the parity sequence lends its parity frames, and says so.
    frames, label = calibration_frames(episode, 3, 78, 200, skip=30)
    assert len(frames) == 3 and "overlapping the parity frames" in label
    with pytest.raises(ValueError, match=r"holds \(78, 200, 3\) uint8 frames, but the policy's camera"):
        calibration_frames(episode, 3, 120, 320)
    with pytest.raises(ValueError, match="calibration needs >= 1 frame"):
        calibration_frames(None, 0, 78, 200)
    synthetic, label = calibration_frames(None, 4, 78, 200)
    assert synthetic.shape == (4, 78, 200, 3) and label == "synthetic (seed 1), 4 frames"


def test_cli_exports_a_checkpoint_and_reports_errors(tmp_path, capsys):
    ckpt = save_checkpoint(tmp_path / "c.pt", build_policy("ctrnn"), step=3, train_config={"lr": 1e-3})
    out = tmp_path / "out" / "model.onnx"
    assert drive_main(["export", str(ckpt), "--out", str(out), "--parity-steps", "5", "--split"]) == 0
    printed = capsys.readouterr().out
    assert "parity (synthetic, 5 steps): max |dcurvature|" in printed and str(out) in printed
    assert (
        out.is_file()
        and out.with_suffix(".vision.onnx").is_file()
        and out.with_suffix(".policy.onnx").is_file()
    )
    assert drive_main(["export", str(tmp_path / "missing.pt"), "--out", str(out)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert drive_main(["export", str(ckpt), "--out", str(tmp_path / "m.pb")]) == 2
    assert "must be a .onnx file" in capsys.readouterr().err
