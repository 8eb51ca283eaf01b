"""What callers look at inside a `DrivingPolicy`: noise on the standardised input, the saliency and neuron
activity of a step, and the optimiser's parameter groups, without reaching into perception or head."""

from __future__ import annotations

import pytest
import torch

from perception.saliency import visual_backprop
from policies.registry import build_policy, policy_names


def _images(b: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 78, 200, 3), generator=g, dtype=torch.uint8)


def _noise(b: int, seed: int = 1) -> torch.Tensor:
    return 0.5 * torch.randn(b, 78, 200, 3, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["ncp-ltc", "cnn"])
def test_input_noise_is_added_to_the_standardised_input(name):
    policy = build_policy(name).eval()
    images, noise = _images(2), _noise(2)
    with torch.no_grad():
        standardized = policy.perception.standardized_input(policy.preprocess(images))
        expected = policy.perception.features_from_standardized(standardized + noise.permute(0, 3, 1, 2))
        torch.testing.assert_close(policy.features(images, noise), expected, atol=0, rtol=0)
        noisy = policy.perception(policy.preprocess(images), noise)
        torch.testing.assert_close(policy.features(images, noise), noisy, atol=0, rtol=0)
        clean = policy.features(images)
        torch.testing.assert_close(clean, policy.perception(policy.preprocess(images)), atol=0, rtol=0)
        torch.testing.assert_close(policy.features(images, torch.zeros_like(noise)), clean, atol=0, rtol=0)
        assert not torch.equal(policy.features(images, noise), clean)
        # The same noise reaches the step and the saliency step.
        state = policy.initial_state(2)
        noisy_step = policy.step(images, state, input_noise=noise)
        inspected = policy.inspect_step(images, state, input_noise=noise, saliency=True)
    torch.testing.assert_close(inspected.curvature_1pm, noisy_step[0], atol=0, rtol=0)
    torch.testing.assert_close(inspected.state, noisy_step[1], atol=0, rtol=0)


def test_input_noise_of_the_wrong_shape_is_refused():
    policy = build_policy("ncp-ltc")
    with pytest.raises(ValueError, match=r"input_noise must be \(1, 78, 200, 3\)"):
        policy.features(_images(1), torch.zeros(1, 3, 78, 200))
    with pytest.raises(ValueError, match="input_noise"):
        policy.features(_images(1), torch.zeros(1, 78, 200, 3, dtype=torch.uint8))


@pytest.mark.parametrize("name", policy_names())
def test_inspect_step_is_step_bit_for_bit_with_activity_and_saliency(name):
    policy = build_policy(name).eval()
    images = _images(2)
    with torch.no_grad():
        state = policy.initial_state(2)
        for _ in range(2):  # a second step from a non-zero state
            curvature, next_state = policy.step(images, state)
            out = policy.inspect_step(images, state, saliency=True)
            torch.testing.assert_close(out.curvature_1pm, curvature, atol=0, rtol=0)
            torch.testing.assert_close(out.state, next_state, atol=0, rtol=0)
            state = next_state
        # The saliency is VisualBackProp of this pass's feature maps, as drive/ computed it before.
        maps = policy.perception.feature_maps(policy.preprocess(images))
        torch.testing.assert_close(out.saliency, visual_backprop(maps, (78, 200)), atol=0, rtol=0)
        curvature, _, saliency = policy.step_with_saliency(images, policy.initial_state(2))
    assert saliency.shape == (2, 78, 200) and 0.0 <= saliency.min() and saliency.max() <= 1.0
    assert policy.inspect_step(images, policy.initial_state(2)).saliency is None
    if policy.state_size:
        torch.testing.assert_close(out.activity, policy.hidden_activity(out.state), atol=0, rtol=0)


def test_cnn_activity_is_its_last_hidden_layer_as_a_forward_hook_sees_it():
    policy = build_policy("cnn").eval()
    seen = {}
    handle = policy.perception.fc2.register_forward_hook(lambda _m, _i, out: seen.update(fc2=torch.relu(out)))
    try:
        with torch.no_grad():
            out = policy.inspect_step(_images(2), policy.initial_state(2))
    finally:
        handle.remove()
    assert out.activity.shape == (2, 100) and (out.activity >= 0).all()
    torch.testing.assert_close(out.activity, seen["fc2"], atol=0, rtol=0)


@pytest.mark.parametrize("name", ["ncp-ltc", "cnn", "lstm"])
def test_parameter_groups_split_convolutions_from_the_rest(name):
    policy = build_policy(name)
    groups = policy.parameter_groups(lr_head=1e-3, lr_perception=1e-4)
    assert [(g["name"], g["lr"]) for g in groups] == [("perception", 1e-4), ("head", 1e-3)]
    conv_ids = {id(p) for p in policy.perception.convs.parameters()}
    assert {id(p) for p in groups[0]["params"]} == conv_ids
    every = [id(p) for g in groups for p in g["params"]]
    assert sorted(every) == sorted(id(p) for p in policy.parameters()) and len(set(every)) == len(every)
