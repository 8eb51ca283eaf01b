"""Deployment faults (issue 17): the drop pattern, the latency queue and the jitter are what the setting
says, deterministic for a seed and the same for every policy; the policy is told the measured time."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from drive.closed_loop.deployment import DeploymentConfig, sweep_labels
from drive.closed_loop.deployment_wrappers import DeploymentDriver, TimingJitter, deploy, drop_pattern
from drive.closed_loop.loop import EpisodeLimits, run_episode
from drive.eval.plan import EvalConfig, plan_episodes
from sim.embedded.simulator import EmbeddedSimConfig, EmbeddedSimulator
from sim.types import Observation

PERIOD_S = 0.05


class Recorder:
    """A driver that returns its call count and records what it was told."""

    name = "recorder"
    hidden_state = None
    saliency = None

    def __init__(self) -> None:
        self.calls: list[tuple[int, float]] = []

    def reset(self, seed: int) -> None:
        self.calls = []

    def act(self, obs: Observation, info: dict[str, Any]) -> float:
        self.calls.append((int(obs.frame), float(info["policy_elapsed_periods"])))
        return float(len(self.calls))


def _obs(frame: int, time_s: float) -> Observation:
    return Observation(image=np.zeros((2, 2, 3), np.uint8), speed_mps=10.0, timestamp_s=time_s, frame=frame)


def _drive(driver: DeploymentDriver, frames: int, seed: int = 3) -> list[float]:
    driver.reset(seed)
    return [driver.act(_obs(i, i * PERIOD_S), {}) for i in range(frames)]


def test_labels_parse_canonically_and_sweep_as_a_product():
    config = DeploymentConfig.parse("drop=0.20, burst=2 ,elapsed=period")
    assert (config.drop_rate, config.drop_burst, config.elapsed) == (0.2, 2, "period")
    assert config.label == "drop=0.2,burst=2,elapsed=period"
    assert DeploymentConfig.parse(config.label) == config
    assert DeploymentConfig.parse("none") == DeploymentConfig() and not DeploymentConfig().active
    assert sweep_labels(["drop:0,0.1", "latency:2"]) == ["latency=2", "drop=0.1,latency=2"]
    with pytest.raises(ValueError, match="KEY=VALUE"):
        DeploymentConfig.parse("dropp=0.1")
    with pytest.raises(ValueError, match="drop must be in"):
        DeploymentConfig.parse("drop=1.5")
    with pytest.raises(ValueError, match="takes a number"):
        DeploymentConfig.parse("latency=two")
    with pytest.raises(ValueError, match="deploy:"):
        EvalConfig(policies=["expert"], deploy=["jitter=2"])


def test_drop_pattern_has_its_rate_and_bursts_and_is_deterministic():
    pattern = drop_pattern(seed=5, frames=20000, rate=0.2, burst=3)
    assert not pattern[0]
    assert pattern.mean() == pytest.approx(0.2, abs=0.015)
    # Runs of lost frames are multiples of the burst length (two bursts may touch), never shorter.
    edges = np.flatnonzero(np.diff(np.r_[0, pattern.astype(int), 0]))
    runs = edges[1::2] - edges[::2]
    runs = runs[:-1] if pattern[-1] else runs  # the episode may end inside a burst
    assert runs.min() >= 3 and np.all(runs % 3 == 0)
    np.testing.assert_array_equal(pattern, drop_pattern(5, 20000, 0.2, 3))
    assert not np.array_equal(pattern, drop_pattern(6, 20000, 0.2, 3))
    assert not drop_pattern(5, 100, 0.0, 3).any()


def test_lost_frames_hold_the_command_and_the_next_frame_is_told_the_gap():
    config = DeploymentConfig(drop_rate=0.3, drop_burst=2)
    inner = Recorder()
    driver = DeploymentDriver(inner, config, PERIOD_S)
    commands = _drive(driver, 400)
    lost = np.asarray(driver.dropped)
    np.testing.assert_array_equal(
        lost, drop_pattern(3, 400, 0.3, 2)
    )  # the step-by-step and batch forms agree
    delivered = np.flatnonzero(~lost)
    assert [f for f, _ in inner.calls] == delivered.tolist()  # the policy ran on delivered frames only
    gaps = np.diff(delivered)
    told = np.asarray([e for _, e in inner.calls])
    np.testing.assert_allclose(told[1:], gaps, atol=1e-9)  # the measured time, in periods
    assert told[0] == 1.0 and gaps.max() >= 3
    for frame in np.flatnonzero(lost):  # a lost frame repeats the last command
        assert commands[frame] == commands[frame - 1]
    # Told one period instead: the same frames are lost, every call is told 1.0.
    period = DeploymentDriver(
        Recorder(), DeploymentConfig(drop_rate=0.3, drop_burst=2, elapsed="period"), PERIOD_S
    )
    _drive(period, 400)
    assert period.dropped == driver.dropped
    assert {e for _, e in period.driver.calls} == {1.0}


def test_latency_queue_delays_every_command_by_n_steps():
    prompt = _drive(DeploymentDriver(Recorder(), DeploymentConfig(), PERIOD_S), 30)
    late = _drive(DeploymentDriver(Recorder(), DeploymentConfig(latency_steps=3), PERIOD_S), 30)
    assert late[:3] == [prompt[0]] * 3  # the queue starts full of the first command
    assert late[3:] == prompt[:-3]


def _jittered_times(seed: int, jitter: float, steps: int) -> tuple[np.ndarray, list[int]]:
    sim = TimingJitter(EmbeddedSimulator(EmbeddedSimConfig(render=False)), jitter)
    obs, _ = sim.reset(seed=seed)
    times = [obs.timestamp_s]
    for _ in range(steps):
        obs, _ = sim.step(_command())
        times.append(obs.timestamp_s)
    return np.diff(times) / PERIOD_S, [sim.step_substeps(f) for f in range(steps)]


def _command():
    from sim.types import Command

    return Command(0.0)


def test_jitter_steps_last_quarter_periods_within_the_spread_and_repeat_for_a_seed():
    periods, substeps = _jittered_times(seed=4, jitter=0.5, steps=300)
    np.testing.assert_allclose(periods, np.asarray(substeps) / 4, atol=1e-9)  # what was drawn is what ran
    assert set(np.round(periods * 4).astype(int)) == {2, 3, 4, 5, 6}  # 0.5 .. 1.5 periods
    assert periods.mean() == pytest.approx(1.0, abs=0.05)
    again, _ = _jittered_times(seed=4, jitter=0.5, steps=300)
    np.testing.assert_array_equal(periods, again)
    other, _ = _jittered_times(seed=5, jitter=0.5, steps=300)
    assert not np.array_equal(periods, other)
    plain, _ = _jittered_times(seed=4, jitter=0.0, steps=20)
    np.testing.assert_allclose(plain, 1.0)


class ConstantDriver(Recorder):
    def act(self, obs: Observation, info: dict[str, Any]) -> float:
        super().act(obs, info)
        return 0.0


def test_every_policy_gets_the_same_faults_in_the_closed_loop():
    config = DeploymentConfig.parse("drop=0.3,burst=2,jitter=0.5")
    runs = []
    for driver in (ConstantDriver(), Recorder()):  # two different "policies"
        sim, wrapped = deploy(EmbeddedSimulator(EmbeddedSimConfig(render=False)), driver, config, PERIOD_S)
        run_episode(sim, wrapped, seed=11, limits=EpisodeLimits(max_steps=120))
        runs.append((list(wrapped.dropped), [e for _, e in driver.calls]))
    assert runs[0] == runs[1]  # the same frames lost and the same elapsed times told
    assert any(runs[0][0]) and len(set(runs[0][1])) > 3


def test_eval_plan_sweeps_deployment_settings_like_noise():
    config = EvalConfig(policies=["expert"], seeds=[0], noise=[0.0], deploy=["none", "drop=0.1"])
    specs = plan_episodes(config, ["expert"])
    assert [s.deploy for s in specs] == ["none", "drop=0.1"]
    assert specs[0].episode_id != specs[1].episode_id


def test_drive_eval_perturb_sweeps_the_product_of_the_axes(tmp_path, capsys):
    from drive.cli import main

    out = tmp_path / "report"
    args = ["eval", "--policy", "expert", "--noise", "0", "--seeds", "3", "--max-steps", "40"]
    args += ["--track", "oval", "--perturb", "drop:0,0.3", "--perturb", "elapsed:true,period"]
    assert main([*args, "--out", str(out), "--quiet", "--set", "laps=1"]) == 0
    settings = ["none", "elapsed=period", "drop=0.3", "drop=0.3,elapsed=period"]
    assert "interventions/km  none:" in capsys.readouterr().out
    data = json.loads((out / "metrics.json").read_text())
    assert data["config"]["deploy"] == settings
    assert [e["deploy"] for e in data["episodes"]] == settings
    offset = {e["deploy"]: e["metrics"]["mean_abs_offset_m"] for e in data["episodes"]}
    # The expert ignores the elapsed time: told or stepped one period it drives the same; lost frames differ.
    assert offset["none"] == offset["elapsed=period"]
    assert offset["drop=0.3"] == offset["drop=0.3,elapsed=period"]
    assert offset["drop=0.3"] != offset["none"]
    assert main(["eval", "--policy", "expert", "--perturb", "drop:2", "--out", str(tmp_path / "x")]) == 2
    assert "drop must be in [0, 1)" in capsys.readouterr().err
