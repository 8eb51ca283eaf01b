"""DrivingPolicy and the registry: every policy steps like it runs sequences; checkpoints round-trip."""

from __future__ import annotations

import pytest
import torch

from common.strict_config import ConfigError, from_dict
from policies.checkpoint import load_policy, read_checkpoint, save_checkpoint
from policies.driving_policy import DrivingPolicy, PolicyConfig
from policies.ncp_wiring import driving_ncp
from policies.registry import build_policy, policy_names

NAMES = ["ncp-ltc", "ncp-cfc", "lstm", "ctrnn", "cnn", "fc-ltc", "random-ltc"]


def _frames(b: int, t: int, h: int = 78, w: int = 200, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, h, w, 3), generator=g, dtype=torch.uint8)


def test_registry_lists_the_issue_policies():
    assert set(NAMES) <= set(policy_names())
    with pytest.raises(ValueError, match="known policies"):
        build_policy("transformer")


@pytest.mark.parametrize("name", NAMES)
def test_step_equals_sequence(name):
    policy = build_policy(name).eval()
    images = _frames(2, 4)
    with torch.no_grad():
        seq, final = policy.forward_sequence(images)
        state = policy.initial_state(2)
        steps = []
        for t in range(4):
            c, state = policy.step(images[:, t], state)
            steps.append(c)
    assert seq.shape == (2, 4) and final.shape == (2, policy.state_size)
    torch.testing.assert_close(torch.stack(steps, 1), seq, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(state, final, atol=1e-5, rtol=1e-4)
    assert torch.isfinite(seq).all()


def test_recurrent_state_changes_output_but_cnn_has_none():
    images = _frames(1, 3)
    ltc = build_policy("ncp-ltc").eval()
    assert ltc.state_size == 19
    with torch.no_grad():
        first, state = ltc.step(images[:, 0], ltc.initial_state(1))
        again, _ = ltc.step(images[:, 0], state)
    assert not torch.equal(first, again)  # memory: same frame, different state, different answer
    cnn = build_policy("cnn")
    assert cnn.state_size == 0 and cnn.wiring is None


def test_parameter_counts_are_the_papers():
    assert build_policy("ncp-ltc").parameter_counts()["perception"] == 79_420
    assert build_policy("cnn").parameter_counts()["total"] == 5_068_900
    lstm = build_policy("lstm").parameter_counts()["head"]
    assert lstm == 24_897
    ctrnn = build_policy("ctrnn").parameter_counts()["head"]
    assert ctrnn == 6_273


def test_camera_of_another_size_is_resized_inside():
    policy = build_policy(PolicyConfig(camera_height=120, camera_width=320, crop_top_frac=0.2)).eval()
    with torch.no_grad():
        c, s = policy.step(_frames(1, 1, 120, 320)[:, 0], policy.initial_state(1))
    assert c.shape == (1,) and s.shape == (1, 19)


def test_checkpoint_round_trip(tmp_path):
    policy = build_policy(PolicyConfig(wiring_seed=7)).eval()
    path = save_checkpoint(tmp_path / "p.pt", policy, step=12, train_config={"lr": 1e-3})
    loaded, payload = load_policy(path)
    assert payload["step"] == 12 and payload["train_config"] == {"lr": 1e-3}
    assert loaded.wiring == policy.wiring
    images = _frames(1, 5)
    with torch.no_grad():
        a, _ = policy.forward_sequence(images)
        b, _ = loaded.forward_sequence(images)
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_checkpoint_keeps_its_wiring_even_if_the_seed_would_build_another(tmp_path):
    wiring = driving_ncp(seed=99)
    from policies.registry import build_policy as build

    policy = build(PolicyConfig(wiring_seed=1), wiring=wiring)
    path = save_checkpoint(tmp_path / "p.pt", policy)
    loaded, _ = load_policy(path)
    assert loaded.wiring == wiring and loaded.wiring != driving_ncp(seed=1)


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_policy(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        load_policy(bad)
    good = save_checkpoint(tmp_path / "good.pt", build_policy("ncp-ltc"))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated.pt"):
        load_policy(truncated)


def test_weights_of_another_shape_are_refused(tmp_path):
    path = save_checkpoint(tmp_path / "lstm.pt", build_policy(PolicyConfig(name="lstm", units=19)))
    payload = read_checkpoint(path)
    from policies.checkpoint import load_weights

    with pytest.raises(ValueError, match="lstm.pt"):
        load_weights(build_policy("lstm"), payload["state_dict"], source=str(path))
    with pytest.raises(ValueError, match="ncp-ltc"):
        load_weights(build_policy("ncp-ltc"), payload["state_dict"], source=str(path))


def test_policy_config_is_strict():
    with pytest.raises(ConfigError, match="policy_config.wiring_sed"):
        from_dict(PolicyConfig, {"wiring_sed": 3}, prefix="policy_config.")
    with pytest.raises(ConfigError, match="units"):
        from_dict(PolicyConfig, {"units": "64"})
    config = PolicyConfig(name="lstm", units=19, crop_top_frac=0.25)
    assert from_dict(PolicyConfig, config.to_dict()) == config
    assert isinstance(build_policy("ncp-ltc"), DrivingPolicy)


def test_checkpoint_from_before_a_config_key_existed_loads_with_its_default(tmp_path):
    policy = build_policy(PolicyConfig(name="lstm", units=19))
    path = save_checkpoint(tmp_path / "old.pt", policy)
    payload = torch.load(path, weights_only=False)
    for newer in ("camera_height", "camera_width", "cfc_mode"):
        del payload["policy_config"][newer]
    torch.save(payload, path)
    loaded, _ = load_policy(path)
    assert loaded.config == policy.config
    payload["policy_config"]["camera_hieght"] = 78
    torch.save(payload, path)
    with pytest.raises(ConfigError, match=r"old\.pt.*policy_config\.camera_hieght"):
        load_policy(path)
