"""Data-dependent initialisation of the LTC head's input map (`calibrate_input_map`): alone, in training."""

from __future__ import annotations

import pytest
import torch

from common.strict_config import load_config
from drive.training.data import AugmentedWindows
from drive.training.distributed import DistContext
from drive.training.train_config import TrainConfig
from drive.training.trainer import Trainer
from policies.ltc import LTC
from policies.registry import build_policy
from tests.drive.bar_drives import BarWindows


def test_each_varying_feature_enters_with_mean_half_and_std_half():
    torch.manual_seed(0)
    head = build_policy("ncp-ltc").head
    features = torch.randn(50, 32) * torch.linspace(0.01, 3.0, 32) + torch.linspace(-2.0, 5.0, 32)
    features[:, 7] = 0.25  # a dead (constant) feature keeps the identity map
    head.calibrate_input_map(features)
    cell = head.rnn_cell
    mapped = cell._map_inputs(features)
    varying = torch.arange(32) != 7
    torch.testing.assert_close(mapped.mean(0)[varying], torch.full((31,), 0.5), atol=1e-5, rtol=0)
    torch.testing.assert_close(mapped.std(0)[varying], torch.full((31,), 0.5), atol=1e-5, rtol=0)
    assert cell.input_w[7] == 1.0 and cell.input_b[7] == 0.0
    # The step uses the calibrated map (inference caches are not stale).
    state = head.initial_state(1)
    before = head.step(features[:1], state)[0]
    head.calibrate_input_map(features * 2.0)
    assert not torch.allclose(head.step(features[:1], state)[0], before)


def test_bad_features_and_heads_without_an_input_map_are_refused():
    head = build_policy("ncp-ltc").head
    with pytest.raises(ValueError, match=r"expected \(B >= 2, 32\) features, got \(1, 32\)"):
        head.calibrate_input_map(torch.zeros(1, 32))
    with pytest.raises(ValueError, match=r"got \(4, 31\)"):
        head.calibrate_input_map(torch.zeros(4, 31))
    images = torch.zeros(2, 78, 200, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match="'lstm': its head has no input map"):
        build_policy("lstm").calibrate_input_map(images)
    unmapped = LTC(32, 8, input_mapping="none")
    with pytest.raises(ValueError, match="affine input mapping"):
        unmapped.calibrate_input_map(torch.zeros(4, 32))


def _trainer(calibrate: bool) -> Trainer:
    overrides = {"batch": 4, "data": {"window": 4}, "device": "cpu", "threads": 1, "progress": False}
    config = load_config(TrainConfig, {**overrides, "calibrate_input_map": calibrate})
    return Trainer(
        config, AugmentedWindows(BarWindows(6, 4, seed=0)), ctx=DistContext(device=torch.device("cpu"))
    )


def test_training_calibrates_on_the_first_windows_only_when_asked():
    plain, calibrated = _trainer(False), _trainer(True)
    assert torch.equal(plain.policy.head.rnn_cell.input_w, torch.ones(32))
    frames = torch.cat([calibrated.train_set[(0, i)][0] for i in range(6)])
    with torch.no_grad():
        mapped = calibrated.policy.head.rnn_cell._map_inputs(calibrated.policy.features(frames))
    std = mapped.std(0)
    varying = std > 1e-4
    assert varying.sum() >= 16
    torch.testing.assert_close(std[varying], torch.full_like(std[varying], 0.5), atol=1e-4, rtol=0)
    # Everything else is as without it: same seed, same other weights.
    for (name, a), (_, b) in zip(plain.policy.named_parameters(), calibrated.policy.named_parameters()):
        if "input_" not in name:
            assert torch.equal(a, b), name
