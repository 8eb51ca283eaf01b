"""The simulators as Gymnasium environments: Gymnasium's own checker, same seed → same episode through
`gymnasium.make`, the action in 1/m, the reward, and the project's perturbation and safety-driver wrappers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium", reason="the gym extra (gymnasium) is not installed")

from gymnasium.utils.env_checker import check_env  # noqa: E402

from sim.gym_env import ENV_IDS, DrivingEnv, env_id, max_curvature_1pm  # noqa: E402
from sim.safety_driver import SafetyDriverConfig  # noqa: E402

ENV = "LiquidDrive/Embedded-v0"
OVAL = {"track": "oval"}


def test_every_backend_is_registered():
    assert ENV_IDS == [env_id(name) for name in ("embedded", "carla")]
    assert ENV in gymnasium.registry and "LiquidDrive/Carla-v0" in gymnasium.registry
    assert gymnasium.spec(ENV).max_episode_steps == 2400


@pytest.mark.parametrize(
    "kwargs",
    [
        {"render_mode": "rgb_array"},
        {"perturbations": [{"name": "gaussian", "variance": 0.1}], "safety": SafetyDriverConfig()},
    ],
)
def test_gymnasium_env_checker_passes_without_a_warning(kwargs):
    env = gymnasium.make(ENV, config=OVAL, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Gymnasium reports soft problems as warnings: none allowed
        check_env(env.unwrapped)
    env.close()


def _rollout(seed, actions, **kwargs):
    env = gymnasium.make(ENV, config=OVAL, **kwargs)
    obs, info = env.reset(seed=seed)
    steps = [(obs, 0.0, False, False, info)]
    for a in actions:
        steps.append(env.step(np.array([a], np.float32)))
    env.close()
    return steps


def _same(a, b):
    (obs_a, rew_a, term_a, trunc_a, info_a), (obs_b, rew_b, term_b, trunc_b, info_b) = a, b
    return (
        np.array_equal(obs_a["image"], obs_b["image"])
        and np.array_equal(obs_a["speed_mps"], obs_b["speed_mps"])
        and (rew_a, term_a, trunc_a) == (rew_b, term_b, trunc_b)
        and info_a["pose"] == info_b["pose"]
        and info_a["expert_curvature_1pm"] == info_b["expert_curvature_1pm"]
    )


@pytest.mark.parametrize("kwargs", [{}, {"perturbations": [{"name": "gaussian", "variance": 0.2}]}])
def test_same_seed_gives_the_same_episode_through_gymnasium_make(kwargs):
    actions = list(np.random.default_rng(0).uniform(-0.05, 0.05, 12))
    first, second = _rollout(7, actions, **kwargs), _rollout(7, actions, **kwargs)
    assert all(_same(a, b) for a, b in zip(first, second))
    other = _rollout(8, actions, **kwargs)
    assert not _same(first[0], other[0])  # another seed starts elsewhere (so the check above can fail)


def test_action_is_curvature_and_reward_is_progress():
    env = DrivingEnv(config=OVAL)
    limit = max_curvature_1pm(env.sim_spec.config)
    assert env.action_space.high[0] == pytest.approx(np.tan(np.radians(35.0)) / 2.7, rel=1e-6)
    assert limit == pytest.approx(env.action_space.high[0], rel=1e-6)
    obs, info = env.reset(seed=1)
    assert obs["image"].shape == (78, 200, 3) and obs["image"].dtype == np.uint8
    assert set(info) >= {"lateral_offset_m", "heading_error_rad", "progress_m", "on_road", "pose"}
    before = info["progress_m"]
    obs, reward, terminated, truncated, info = env.step(np.array([0.03], np.float32))
    assert info["commanded_curvature_1pm"] == pytest.approx(0.03)
    assert reward == pytest.approx(info["progress_m"] - before) and reward > 0.3  # ~8 m/s × 0.05 s
    assert obs["speed_mps"][0] == pytest.approx(info["speed_mps"])
    assert not terminated and not truncated
    env.close()


def test_leaving_the_road_terminates_without_a_safety_driver_and_is_taken_over_with_one():
    hard_left = np.array([0.2], np.float32)
    env = gymnasium.make(ENV, config=OVAL)
    env.reset(seed=0)
    steps = 0
    terminated = False
    while not terminated and steps < 400:
        _, _, terminated, _, info = env.step(hard_left)
        steps += 1
    assert terminated and not info["on_road"]
    env.close()

    env = gymnasium.make(ENV, config=OVAL, safety=SafetyDriverConfig(max_offset_m=1.0))
    env.reset(seed=0)
    for _ in range(steps + 20):
        _, _, terminated, _, info = env.step(hard_left)
        assert not terminated
    assert info["interventions"] >= 1  # the safety driver's count, as in the evaluation
    env.close()


def test_perturbations_are_the_projects_wrappers():
    clean = DrivingEnv(config=OVAL)
    noisy = DrivingEnv(config=OVAL, perturbations=[{"name": "gaussian", "variance": 0.1}])
    assert [p["name"] for p in noisy.sim.chain()] == ["gaussian"]
    a, _ = clean.reset(seed=3)
    b, _ = noisy.reset(seed=3)
    diff = (b["image"].astype(np.float32) - a["image"].astype(np.float32)) / 255.0
    assert 0.05 < diff.std() < 0.35  # σ = 0.32 before clipping at 0 and 1
    with pytest.raises(ValueError, match="unknown perturbation 'fog'"):
        DrivingEnv(config=OVAL, perturbations=[{"name": "fog"}])


def test_without_gymnasium_the_import_names_the_extra(monkeypatch):
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "gymnasium", None)  # import gymnasium now raises ImportError
    monkeypatch.delitem(sys.modules, "sim.gym_env")
    with pytest.raises(ImportError, match=r"pip install -e '\.\[gym\]'"):
        importlib.import_module("sim.gym_env")


def test_config_mapping_is_strict_and_nested():
    env = DrivingEnv(config={"track": "oval", "camera": {"width": 160, "height": 64}})
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (64, 160, 3) and env.observation_space["image"].shape == (64, 160, 3)
    env.close()
    with pytest.raises(ValueError, match="unknown config key 'config.trak'"):
        DrivingEnv(config={"trak": "oval"})
