"""`PolicyConfig.sensory_norm`: the feature norm between the conv head and the NCP heads, and `paper`."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from perception.feature_norm import FeatureNorm, make_feature_norm
from policies.checkpoint import load_policy, read_checkpoint, save_checkpoint
from policies.driving_policy import PolicyConfig
from policies.ltc import LTC
from policies.ncp_wiring import driving_ncp
from policies.registry import build_policy

NORMED = ["ncp-ltc", "ncp-cfc", "fc-ltc", "random-ltc"]


def _images(b: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 78, 200, 3), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("name", NORMED)
def test_paper_is_the_raw_relu_features_with_the_same_weights(name):
    torch.manual_seed(3)
    paper = build_policy(PolicyConfig(name=name, sensory_norm="paper"))
    torch.manual_seed(3)
    normed = build_policy(PolicyConfig(name=name))
    assert normed.config.sensory_norm == "batch"
    # The norm draws no random numbers and has no parameters: every weight is the paper switch's.
    assert dict(paper.named_parameters()).keys() == dict(normed.named_parameters()).keys()
    for (key, a), (_, b) in zip(paper.named_parameters(), normed.named_parameters()):
        assert torch.equal(a, b), key
    extra = set(normed.state_dict()) - set(paper.state_dict())
    buffers = ("running_mean", "running_var", "batches_tracked")
    assert extra == {f"perception.feature_norm.{k}" for k in buffers}
    assert isinstance(paper.perception.feature_norm, nn.Identity)
    head = paper.perception
    with torch.no_grad():
        maps = head.feature_maps(_images(3))
        x = maps[-1].flatten(2).unsqueeze(2)
        raw = F.relu(torch.matmul(x, head.dense_weight).squeeze(2) + head.dense_bias).flatten(1)
        assert torch.equal(paper.features(_images(3)), raw)


def test_baselines_ignore_the_switch_and_bad_values_are_refused():
    for name in ("lstm", "ctrnn"):
        assert isinstance(build_policy(name).perception.feature_norm, nn.Identity)
    with pytest.raises(ValueError, match="sensory_norm must be one of"):
        PolicyConfig(sensory_norm="layer")


def test_training_uses_batch_moments_and_eval_a_fixed_affine_map():
    g = torch.Generator().manual_seed(0)
    norm = FeatureNorm(4, momentum=0.5, eps=1e-9)
    first = torch.rand(64, 4, generator=g) * torch.tensor([0.1, 1.0, 5.0, 0.0])
    out = norm(first)
    torch.testing.assert_close(out.mean(0), torch.full((4,), 0.5), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(0, unbiased=False)[:3], torch.full((3,), 0.5), atol=1e-3, rtol=0)
    assert torch.all(out[:, 3] == 0.5)  # a dead feature sits at the sigmoids' midpoint
    torch.testing.assert_close(norm.running_mean, first.mean(0))  # the first batch sets the moments
    second = torch.rand(32, 4, generator=g)
    norm(second)
    torch.testing.assert_close(norm.running_mean, 0.5 * first.mean(0) + 0.5 * second.mean(0))
    norm.eval()
    probe = torch.rand(5, 4, generator=g)
    expected = (probe - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) * 0.5 + 0.5
    torch.testing.assert_close(norm(probe), expected)
    torch.testing.assert_close(norm(probe[:1]), expected[:1])  # frame by frame as in a batch


def test_checkpoints_from_before_the_switch_load_as_paper(tmp_path):
    policy = build_policy(PolicyConfig(sensory_norm="paper")).eval()
    path = tmp_path / "old.pt"
    save_checkpoint(path, policy, step=1)
    payload = read_checkpoint(path)
    del payload["policy_config"]["sensory_norm"]
    torch.save(payload, path)
    loaded, _ = load_policy(path)
    assert loaded.config.sensory_norm == "paper"
    images = _images(2)
    with torch.no_grad():
        torch.testing.assert_close(loaded.features(images), policy.features(images), atol=0, rtol=0)


def _drive_like_features(n: int = 16, t: int = 16, d: int = 250) -> tuple[torch.Tensor, torch.Tensor]:
    """A stand-in for the conv head's last feature map and a steering target.

    Each frame's (d,) ReLU map mixes a slow 2-d "road" signal (random walks, weight 0.2) with 16
    i.i.d. nuisance factors (texture, light), as camera features mostly vary with things that do not
    steer; the target is tanh of the first road signal, (n, t).
    """
    g = torch.Generator().manual_seed(0)
    road = torch.randn(n, t, 2, generator=g).cumsum(1) / math.sqrt(t)
    nuisance = torch.randn(n, t, 16, generator=g)
    mixing = torch.randn(18, d, generator=g)
    mixing[:2] *= 0.2
    maps = F.relu(torch.cat([road, nuisance], -1) @ mixing / math.sqrt(18) + 0.2)
    return maps, torch.tanh(road[..., 0])


def _fit_ratio(sensory_norm: str, seed: int = 2, steps: int = 40) -> float:
    """The conv head's interface in small: a (250 -> 32) ReLU dense layer (He init, as ConvHead's), the
    feature norm of `sensory_norm`, the driving NCP's LTC; Adam at the default config's head rate.

    Returns:
        Final MSE over the MSE of the zero predictor (1.0 = the plateau).
    """
    maps, target = _drive_like_features()
    torch.manual_seed(seed)
    dense = nn.Linear(maps.shape[-1], 32)
    nn.init.kaiming_uniform_(dense.weight, nonlinearity="relu")
    nn.init.zeros_(dense.bias)
    norm = make_feature_norm(sensory_norm, 32)
    head = LTC(32, driving_ncp())
    optimizer = torch.optim.Adam([*dense.parameters(), *head.parameters()], lr=0.01)

    def predict() -> torch.Tensor:
        features = norm(F.relu(dense(maps.flatten(0, 1)))).reshape(*maps.shape[:2], 32)
        return head.forward_sequence(features)[0][..., 0]

    for _ in range(steps):
        optimizer.zero_grad()
        F.mse_loss(predict(), target).backward()
        optimizer.step()
    norm.eval()
    with torch.no_grad():
        return float(F.mse_loss(predict(), target) / target.pow(2).mean())


def test_the_default_learns_where_the_papers_raw_features_stall_on_the_plateau():
    # Measured: the paper's raw features 0.80 of the zero predictor (41% of the ReLUs dead), the norm
    # 0.15 (6% dead); on the demo drives the same seed-dependent stall happens (README).
    assert _fit_ratio("paper") > 0.6  # the task does catch the plateau
    assert _fit_ratio(PolicyConfig().sensory_norm) < 0.35
