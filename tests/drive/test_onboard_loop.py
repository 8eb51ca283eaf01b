"""`drive onboard`: the ONNX model drives like the PyTorch policy; deadline misses skip frames."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from drive.cli import main
from drive.closed_loop.drivers import PolicyRunner
from drive.closed_loop.loop import EpisodeLimits, run_episode
from drive.closed_loop.onboard_drive import OnboardDriver, drive_onboard
from drive.export.pipeline import export_policy
from policies.driving_policy import PolicyConfig
from policies.registry import build_policy
from sim.embedded.simulator import EmbeddedSimConfig
from sim.registry import make_simulator
from sim.safety_driver import SafetyDriverConfig

SECONDS = 25.0


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(3)
    # A larger output scale makes the untrained policy steer hard enough to need the safety driver.
    policy = build_policy(PolicyConfig(curvature_scale_1pm=0.5)).eval()
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_policy(policy, path, parity_steps=10)
    return policy, path


def test_onboard_loop_matches_the_pytorch_loop(exported):
    policy, path = exported
    onboard = drive_onboard(path, track="forest", seed=4, laps=1, max_time_s=SECONDS)
    config = EmbeddedSimConfig(track="forest")
    with make_simulator("embedded", config, safety=SafetyDriverConfig()) as sim:
        torch_run = run_episode(
            sim, PolicyRunner(policy), seed=4, limits=EpisodeLimits(laps=1, max_time_s=SECONDS)
        )
    assert torch_run.metrics["interventions"] >= 1  # the comparison covers takeovers
    assert onboard["metrics"]["interventions"] == torch_run.metrics["interventions"]
    assert [r["frame"] for r in onboard["interventions"]] == [r["frame"] for r in torch_run.interventions]
    for key in ("x_m", "y_m"):
        np.testing.assert_allclose(onboard["telemetry"][key], torch_run.telemetry[key], atol=0.02)
    assert onboard["deadline"]["deadline_misses"] == 0 and onboard["deadline"]["model_calls"] == len(
        torch_run.telemetry["frame"]
    )


def test_overruns_are_counted_and_skip_frames(exported):
    _, path = exported
    ticks = itertools.count()
    # Every model call appears to take 0.12 s against a 0.05 s deadline: 2 frames lost after each call.
    driver = OnboardDriver(path, deadline_s=0.05, clock=lambda: next(ticks) * 0.12)
    with make_simulator("embedded", EmbeddedSimConfig(track="oval", render=True)) as sim:
        result = run_episode(sim, driver, seed=0, limits=EpisodeLimits(max_steps=29))
    stats = driver.stats.summary()
    assert stats["model_calls"] == 10 and stats["deadline_misses"] == 10 and stats["skipped_frames"] == 20
    curv = result.telemetry["policy_curvature_1pm"]
    assert np.all(curv[1::3] == curv[0::3]) and np.all(curv[2::3] == curv[0::3])  # held while skipped
    assert stats["latency_p50_ms"] == pytest.approx(120.0)


def test_cli_prints_latency_and_metrics(exported, tmp_path, capsys):
    _, path = exported
    assert main(["onboard", "--model", str(path), "--max-minutes", "0.1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "latency_p50_ms" in out and "interventions" in out
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "drive" / "meta.json").is_file()
    assert main(["onboard", "--model", str(tmp_path / "missing.onnx")]) == 2
