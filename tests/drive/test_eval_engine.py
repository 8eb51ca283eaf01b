"""The evaluation's ONNX engine: the exported graph drives through the onboard runtime and gives what the
torch engine gives (same interventions, curvature within 1e-4 1/m, neuron traces and saliency), the export
is cached by checkpoint digest, and what it cannot do is refused with one clear line."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from common.strict_config import ConfigError, load_config
from drive.cli import main
from drive.eval.engine import cache_root, engine_model, parse_engine
from drive.eval.evaluate import run_episodes
from drive.eval.plan import EvalConfig


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from policies.checkpoint import save_checkpoint
    from policies.registry import build_policy

    torch.manual_seed(1)
    return str(save_checkpoint(tmp_path_factory.mktemp("ckpt") / "ncp-ltc.pt", build_policy("ncp-ltc")))


@pytest.fixture(autouse=True)
def engine_cache(tmp_path_factory, monkeypatch):
    """One cache folder for the module's tests (the export is made once), never the user's own."""
    monkeypatch.setenv("DRIVE_ENGINE_CACHE", str(tmp_path_factory.getbasetemp() / "engine-cache"))


def test_onnx_engine_drives_like_the_torch_engine_on_the_same_seeds(checkpoint, tmp_path):
    config = EvalConfig(
        policies=[checkpoint],
        noise=[0.1],
        seeds=[0, 1],
        laps=None,
        max_steps=150,
        track="oval",
        saliency=True,
        saliency_frames=20,
    )
    torch_runs = run_episodes(config, tmp_path / "torch", progress=False)
    onnx_config = dataclasses.replace(config, engine="onnx")
    onnx_runs = run_episodes(onnx_config, tmp_path / "onnx", progress=False)
    assert onnx_config.engine == "onnx:fp32"
    for a, b in zip(torch_runs, onnx_runs):
        assert a.metrics["frames"] == b.metrics["frames"] == 151
        assert a.metrics["interventions"] == b.metrics["interventions"]
        assert [r["frame"] for r in a.interventions] == [r["frame"] for r in b.interventions]
        curvature_torch, curvature_onnx = (
            a.telemetry["policy_curvature_1pm"],
            b.telemetry["policy_curvature_1pm"],
        )
        assert np.abs(curvature_torch).max() > 1e-3  # the untrained policy does steer
        np.testing.assert_allclose(curvature_onnx, curvature_torch, rtol=0, atol=1e-4)
        np.testing.assert_allclose(b.hidden, a.hidden, rtol=0, atol=1e-4)  # the 19 neurons' traces
        assert a.saliency.shape == b.saliency.shape == (20, 78, 200)
        assert np.abs(a.saliency.astype(int) - b.saliency.astype(int)).max() <= 1  # uint8 maps, rounding
    assert sum(a.metrics["interventions"] for a in torch_runs) > 0  # the count is compared, not 0 == 0

    # Cached: the next evaluation finds the graph by the checkpoint's digest and does not export again.
    model = engine_model(checkpoint, "fp32")
    assert model.parent.parent == cache_root()
    stamp = model.stat().st_mtime_ns
    assert engine_model(checkpoint, "fp32").stat().st_mtime_ns == stamp


def test_drive_eval_engine_flag_reports_the_graph_that_drove(checkpoint, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["eval", "--policy", checkpoint, "--noise", "0", "--seeds", "0", "--max-steps", "10"]
    code = main([*args, "--engine", "onnx:fp32", "--out", str(out), "--quiet"])
    assert code == 0
    data = json.loads((out / "metrics.json").read_text())
    assert data["config"]["engine"] == "onnx:fp32" and data["engine"]["engine"] == "onnx:fp32"
    row = data["engine"]["models"][checkpoint]
    drove = engine_model(checkpoint, "fp32", feature_maps=False)  # saliency is off by default
    assert row["model"] == str(drove) and len(row["model_sha256"]) == 64
    assert row["parity_max_abs_diff_1pm"] <= 1e-4
    assert "Engine: `onnx:fp32`" in (out / "report.md").read_text()

    code = main([*args, "--engine", "tensorrt", "--out", str(tmp_path / "x"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "engine: 'tensorrt' is not one of torch, onnx, onnx:fp32, onnx:int8, onnx:fp16" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["engine=onnx:int4"], "engine: 'onnx:int4' is not one of"),
        (["engine=torch:fp16"], "engine: 'torch:fp16' is not one of"),
        (["engine=onnx", "noise_space=standardized"], "noise_space 'standardized'"),
    ],
)
def test_bad_engines_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(EvalConfig, None, ["policies=[expert]", *overrides])


def test_study_and_launch_files_take_the_engine_strictly():
    from common.strict_config import from_dict
    from drive.launch.runner import load_launch

    assert from_dict(EvalConfig, {"policies": ["expert"], "engine": "onnx:int8"}, prefix="eval.").engine == (
        "onnx:int8"
    )
    with pytest.raises(ConfigError, match=r"eval: engine: 'onnx:int3' is not one of"):
        from_dict(EvalConfig, {"policies": ["expert"], "engine": "onnx:int3"}, prefix="eval.")
    assert load_launch("launch/demo.yaml").eval["engine"] == "torch"


def test_engine_names_parse_to_a_canonical_form():
    assert parse_engine("torch").name == "torch"
    assert parse_engine("onnx").name == "onnx:fp32"
    assert parse_engine("onnx:int8").precision == "int8"


def test_grad_cam_is_a_torch_engine_feature(checkpoint):
    from drive.closed_loop.onnx_runner import OnnxRunner

    runner = OnnxRunner(engine_model(checkpoint, "fp32"))
    assert runner.has_feature_maps
    with pytest.raises(ValueError, match="grad_cam.*torch-engine feature"):
        runner.saliency_method = "grad_cam"


def test_the_runtime_checks_the_diagnostic_outputs_its_metadata_names(checkpoint, tmp_path):
    import onnx

    from drive.onboard.contract import MetaKey, ModelContractError
    from drive.onboard.runtime import OnboardPolicy

    model = onnx.load(str(engine_model(checkpoint, "fp32")))
    names = json.loads(next(p.value for p in model.metadata_props if p.key == MetaKey.DIAGNOSTIC_OUTPUTS))
    assert names == ["activity", *(f"feature_map_{k}" for k in range(5))]
    policy = OnboardPolicy(engine_model(checkpoint, "fp32"))
    policy.act(np.zeros((78, 200, 3), np.uint8))
    assert policy.diagnostics["activity"].shape == (1, 19)
    assert [policy.diagnostics[f"feature_map_{k}"].ndim for k in range(5)] == [3] * 5

    for value, message in (('["activity", "feature_map_9"]', "feature_map_9"), ("activity", "JSON list")):
        for prop in model.metadata_props:  # the metadata is outside the model digest: only the key changes
            if prop.key == MetaKey.DIAGNOSTIC_OUTPUTS:
                prop.value = value
        path = tmp_path / "edited.onnx"
        onnx.save(model, str(path))
        with pytest.raises(ModelContractError, match=message):
            OnboardPolicy(path)


def test_under_jitter_and_drops_the_onnx_engine_integrates_the_told_time_like_torch(checkpoint, tmp_path):
    """The graph gets the simulated elapsed time the deployment faults tell the policy (never the wall
    clock between calls), so both engines integrate the same irregular steps."""
    config = EvalConfig(
        policies=[checkpoint],
        noise=[0.0],
        seeds=[0],
        laps=None,
        max_steps=100,
        track="oval",
        deploy=["drop=0.2,burst=2,jitter=0.5"],
    )
    torch_run, onnx_run = (
        run_episodes(dataclasses.replace(config, engine=engine), tmp_path / engine, progress=False)[0]
        for engine in ("torch", "onnx")
    )
    curvature_torch = torch_run.telemetry["policy_curvature_1pm"]
    assert np.abs(curvature_torch).max() > 1e-3
    np.testing.assert_allclose(onnx_run.telemetry["policy_curvature_1pm"], curvature_torch, rtol=0, atol=1e-4)


def test_saliency_off_drives_the_graph_without_feature_maps_to_the_same_numbers(checkpoint, tmp_path):
    """onnxruntime computes every output on each call: with saliency off the engine drives a sibling
    graph without the feature-map outputs, whose other outputs are the same nodes and weights."""
    full, bare = engine_model(checkpoint, "fp32"), engine_model(checkpoint, "fp32", feature_maps=False)
    assert bare == full.with_name("model.no-maps.onnx")
    stamp = bare.stat().st_mtime_ns
    assert engine_model(checkpoint, "fp32", feature_maps=False).stat().st_mtime_ns == stamp  # derived once
    config = EvalConfig(
        policies=[checkpoint], noise=[0.1], seeds=[0], laps=None, max_steps=60, track="oval", engine="onnx"
    )
    on, off = (
        run_episodes(dataclasses.replace(config, saliency=s), tmp_path / str(s), progress=False)[0]
        for s in (True, False)
    )
    assert off.saliency is None and on.saliency is not None
    np.testing.assert_array_equal(off.telemetry["policy_curvature_1pm"], on.telemetry["policy_curvature_1pm"])
    np.testing.assert_array_equal(off.hidden, on.hidden)


def test_without_outputs_removes_the_nodes_and_weights_only_they_needed(checkpoint, tmp_path):
    import onnx

    from drive.export.graph_edit import without_outputs
    from drive.onboard.contract import MetaKey
    from drive.onboard.runtime import OnboardPolicy

    model = onnx.load(str(engine_model(checkpoint, "fp32")))
    maps = [f"feature_map_{k}" for k in range(5)]
    bare = without_outputs(model, maps)
    assert [o.name for o in bare.graph.output] == ["curvature", "next_state", "activity"]
    kept = {n.name for n in bare.graph.node}
    assert kept < {n.name for n in model.graph.node}
    # Each map's channel mean went; the convolutions stay, the last one's output feeding the head.
    assert sorted(n.op_type for n in model.graph.node if n.name not in kept) == ["ReduceMean"] * 5
    props = {p.key: p.value for p in bare.metadata_props}
    assert json.loads(props[MetaKey.DIAGNOSTIC_OUTPUTS]) == ["activity"]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    onnx.save(model, str(tmp_path / "full.onnx"))
    policies = [OnboardPolicy(tmp_path / name) for name in ("full.onnx", "bare.onnx")]  # digests check
    frames = np.random.default_rng(0).integers(0, 256, (5, 78, 200, 3), dtype=np.uint8)
    for frame in frames:
        a, b = (p.act(frame, 0.05) for p in policies)
        assert a == b
        np.testing.assert_array_equal(policies[0].state, policies[1].state)
    assert sorted(policies[1].diagnostics) == ["activity"]
    for drop in (["feature_map_9"], ["curvature", "next_state", "activity", *maps]):
        with pytest.raises(ValueError, match="cannot drop"):
            without_outputs(model, drop)
