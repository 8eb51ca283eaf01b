"""`PolicyRunner` passes an observation's standardised-space `input_noise` to the policy, when it has one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from drive.closed_loop.drivers import PolicyRunner
from policies.registry import build_policy


@dataclass
class _Obs:
    image: np.ndarray
    input_noise: np.ndarray | None = None


def test_runner_adds_the_observations_input_noise_and_keeps_its_state():
    torch.manual_seed(0)
    policy = build_policy("ncp-ltc")
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (3, 78, 200, 3), dtype=np.uint8)
    noise = rng.normal(0.0, 0.5, (3, 78, 200, 3)).astype(np.float32)
    runner = PolicyRunner(policy)
    runner.reset(0)
    with torch.no_grad():
        state = policy.initial_state(1)
        for image, n in zip(frames, noise):
            expected, state = policy.step(
                torch.from_numpy(image[None]), state, input_noise=torch.from_numpy(n[None])
            )
            assert runner.act(_Obs(image, n)) == float(expected[0])
            np.testing.assert_array_equal(runner.hidden_state, policy.hidden_activity(state)[0].numpy())
    # No field, or a None one, is the clean policy; the noise did change the answer.
    assert PolicyRunner(policy).act(_Obs(frames[0])) == PolicyRunner(policy).act(_Obs(frames[0], None))
    runner.reset(0)
    assert runner.act(_Obs(frames[0], noise[0])) != PolicyRunner(policy).act(_Obs(frames[0]))
