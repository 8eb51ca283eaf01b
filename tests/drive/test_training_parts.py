"""The pieces of training: strict config, the curve-weighted loss, the schedule, augmentation, sampling."""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from common.strict_config import ConfigError, load_config, to_dict
from drive.training.augment import (
    ShadowBand,
    WindowAugmentation,
    apply_augmentation,
    augment_window,
    shift_label_correction_1pm,
)
from drive.training.data import AugmentedWindows, EpochSampler
from drive.training.loss import curve_weights, weighted_error_sums, weighted_squared_error
from drive.training.schedule import lr_factor
from drive.training.state import check_resumable
from drive.training.train_config import AugmentConfig, OptimConfig, TrainConfig, config_differences
from drive.training.train_metrics import MetricsLog, read_metrics

ROOT = Path(__file__).resolve().parents[2]


# -- config -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["train_default.yaml", "train_paper.yaml"])
def test_launch_files_load_strictly(name):
    config = load_config(TrainConfig, ROOT / "launch" / name)
    assert config.data.window == 16 and config.optim.clip_norm == 10.0
    assert config.optim.lr_perception < config.optim.lr_head  # the paper: lower LR for the conv layers
    assert config.policy.name == "ncp-ltc"


@pytest.mark.parametrize(
    ("source", "overrides", "match"),
    [
        ({"optim": {"lr_heads": 1e-3}}, [], r"optim\.lr_heads"),
        ({}, ["augment.shadow_strenght=0.5"], r"augment\.shadow_strenght"),
        ({"policy": {"nmae": "lstm"}}, [], r"policy\.nmae"),
        ({"batch": "sixteen"}, [], r"batch: expected an integer"),
        ({"device": "tpu"}, [], r"device: 'tpu' is not one of"),
        ({}, ["data.val_fraction=1.5"], r"data\.val_fraction must be in \[0, 1\)"),
        ({}, ["optim.schedule=linear"], r"optim\.schedule"),
        ({}, ["augment.shadow_strength=[0.8,0.2]"], r"augment\.shadow_strength"),
    ],
)
def test_bad_config_is_an_error_naming_the_key(source, overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config(TrainConfig, source, overrides)


def test_overrides_reach_nested_sections():
    config = load_config(
        TrainConfig, None, ["optim.lr_head=3e-4", "policy.name=lstm", "augment.shift_max_px=4"]
    )
    assert (
        config.optim.lr_head == 3e-4 and config.policy.name == "lstm" and config.augment.shift_max_px == 4.0
    )
    assert to_dict(config)["policy"]["name"] == "lstm"


def test_resume_check_names_changed_keys_but_allows_location_and_speed_knobs():
    saved = to_dict(TrainConfig())
    moved = to_dict(load_config(TrainConfig, None, ["data.root=/elsewhere", "data.workers=3", "device=cpu"]))
    check_resumable(saved, moved, "ckpt")  # where and how fast: allowed
    changed = to_dict(load_config(TrainConfig, None, ["optim.lr_head=0.1", "policy.units=32"]))
    assert config_differences(saved, changed) == ["optim.lr_head", "policy.units"]
    with pytest.raises(ValueError, match=r"policy\.units: 64 saved, 32 now"):
        check_resumable(saved, changed, "ckpt")


# -- loss -------------------------------------------------------------------------------------------------


def test_alpha_zero_is_mean_squared_error_in_scale_units():
    pred, labels = torch.tensor([[0.01, -0.02, 0.0]]), torch.tensor([[0.0, 0.02, 0.05]])
    loss = weighted_squared_error(pred, labels, 0.05, alpha=0.0)
    expected = (((pred - labels) / 0.05) ** 2).mean()
    torch.testing.assert_close(loss, expected)


def test_weights_are_exp_alpha_abs_y_normalised_to_mean_one():
    labels = torch.tensor([[0.0, 0.05, -0.1]])
    w = curve_weights(labels, 0.05, alpha=1.0)
    torch.testing.assert_close(w, torch.tensor([[1.0, math.e, math.e**2]]))
    pred = torch.zeros_like(labels)
    # zero predictor: sum(w y^2) / sum(w), with y in scale units
    y = labels / 0.05
    expected = (w * y**2).sum() / w.sum()
    torch.testing.assert_close(weighted_squared_error(pred, labels, 0.05, 1.0), expected)
    # equivalently the mean of (w / mean(w)) * error
    torch.testing.assert_close(expected, ((w / w.mean()) * y**2).mean())


def test_loss_is_free_of_the_curvature_unit():
    pred, labels = torch.randn(2, 5) * 0.03, torch.randn(2, 5) * 0.03
    a = weighted_squared_error(pred, labels, 0.05, alpha=1.5)
    b = weighted_squared_error(pred * 10, labels * 10, 0.5, alpha=1.5)
    torch.testing.assert_close(a, b)


def test_missing_labels_are_ignored_not_poisonous():
    pred = torch.tensor([[0.01, 0.02, 0.03]], requires_grad=True)
    labels = torch.tensor([[0.0, float("nan"), 0.03]])
    loss = weighted_squared_error(pred, labels, 0.05, 1.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all() and pred.grad[0, 1] == 0
    expected = weighted_squared_error(pred[:, [0, 2]], labels[:, [0, 2]], 0.05, 1.0)
    torch.testing.assert_close(loss, expected)
    assert weighted_squared_error(pred, torch.full_like(labels, float("nan")), 0.05, 1.0) == 0


def test_global_normalisation_makes_shards_add_up_to_the_whole_batch():
    pred = (torch.randn(4, 6) * 0.04).requires_grad_()
    labels = torch.randn(4, 6) * 0.04
    whole = weighted_squared_error(pred, labels, 0.05, 2.0)
    (g_whole,) = torch.autograd.grad(whole, pred)
    total = curve_weights(labels, 0.05, 2.0).sum()
    ranks = 2  # each "rank" divides by total / ranks; DDP then averages the gradients
    shards = [
        weighted_squared_error(pred[r::2], labels[r::2], 0.05, 2.0, total / ranks) for r in range(ranks)
    ]
    grads = [torch.autograd.grad(s, pred)[0] for s in shards]
    torch.testing.assert_close(sum(grads) / ranks, g_whole)
    torch.testing.assert_close(sum(s.detach() for s in shards) / ranks, whole.detach())
    err, zero, weight = weighted_error_sums(pred, labels, 0.05, 2.0)
    torch.testing.assert_close(err / weight, whole)


# -- schedule ---------------------------------------------------------------------------------------------


def test_schedules():
    cosine = OptimConfig(schedule="cosine", warmup_steps=4, min_lr_frac=0.1)
    assert [lr_factor(s, cosine, 100) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, cosine, 100) == 1.0 and lr_factor(100, cosine, 100) == pytest.approx(0.1)
    factors = [lr_factor(s, cosine, 100) for s in range(4, 101)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))  # monotone decay after warm-up
    step = OptimConfig(schedule="step", warmup_steps=0, step_every=10, step_gamma=0.5)
    assert [lr_factor(s, step, 100) for s in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]


# -- augmentation -----------------------------------------------------------------------------------------


def _grey_window(t: int = 4, value: int = 128) -> np.ndarray:
    return np.full((t, 78, 200, 3), value, np.uint8)


def test_augmentation_is_deterministic_per_seed_epoch_and_index():
    frames = np.random.default_rng(0).integers(0, 256, (4, 78, 200, 3), dtype=np.uint8)
    labels = np.zeros(4, np.float32)
    cfg = AugmentConfig(shadow_probability=1.0, shift_max_px=5, shift_probability=1.0)
    a = augment_window(frames, labels, cfg, seed=1, epoch=2, index=3)
    b = augment_window(frames, labels, cfg, seed=1, epoch=2, index=3)
    c = augment_window(frames, labels, cfg, seed=1, epoch=3, index=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    off = augment_window(frames, labels, AugmentConfig(enabled=False), 1, 2, 3)
    assert off[0] is frames


def test_dark_and_light_bands_change_only_inside_the_band_and_drift_coherently():
    band = ShadowBand(angle_rad=0.0, offset_px=0.0, speed_px=3.0, width_px=20.0, strength=0.5, light=False)
    cfg = AugmentConfig()
    out, _ = apply_augmentation(
        _grey_window(), np.zeros(4, np.float32), WindowAugmentation(bands=(band,)), cfg
    )
    centre = 100  # angle 0: a vertical band around the image's centre column at frame 0
    assert out[0, :, centre].max() == 64 and out[0, :, 0].min() == 128  # dark inside, untouched far away
    assert (out[0] == out[0, :1]).all()  # a vertical band: every row alike
    # the band slides 3 px per frame along its normal (+x): its darkest column moves right
    columns = [int(np.argmin(out[t, 0, :, 0].astype(int) + np.arange(200) * 1e-3)) for t in range(4)]
    assert np.diff(columns).tolist() == [3, 3, 3]
    light = WindowAugmentation(bands=(ShadowBand(0.0, 0.0, 0.0, 20.0, 0.5, True),))
    out, _ = apply_augmentation(_grey_window(), np.zeros(4, np.float32), light, cfg)
    assert out[0, 0, centre, 0] == 192 and out[0, 0, 0, 0] == 128  # blended halfway to white


def test_photometric_jitter_is_the_same_for_every_frame_and_injects_no_noise():
    aug = WindowAugmentation(brightness=0.1, contrast=1.2, gamma=0.8)
    frames = _grey_window(value=100)
    frames[:, :, :100] = 50  # two flat regions
    out, labels = apply_augmentation(frames, np.zeros(4, np.float32), aug, AugmentConfig())
    assert (out == out[:1]).all()  # consistent over the window
    assert len(np.unique(out[0, :, :100])) == 1 and len(np.unique(out[0, :, 100:])) == 1  # no noise
    assert out[0, 0, 0, 0] != 50 and (labels == 0).all()


def test_camera_shift_moves_content_and_corrects_the_label():
    frames = _grey_window(value=0)
    frames[:, :, 100] = 255  # a bright column at x = 100
    labels = np.full(4, 0.01, np.float32)
    cfg = AugmentConfig(camera_hfov_deg=90.0, shift_lookahead_m=10.0)
    out, corrected = apply_augmentation(frames, labels, WindowAugmentation(shift_px=10), cfg)
    assert (out[:, :, 110] == 255).all() and (out[:, :, 100] == 0).all()
    # content right = camera yawed left by atan(10 / 100 px) (f = 100 px at 90°, 200 px wide) -> steer right
    expected = -2 * math.sin(math.atan(10 / 100)) / 10.0
    assert shift_label_correction_1pm(10, 200, 90.0, 10.0) == pytest.approx(expected)
    np.testing.assert_allclose(corrected, 0.01 + expected, rtol=1e-6)
    _, back = apply_augmentation(frames, labels, WindowAugmentation(shift_px=-10), cfg)
    np.testing.assert_allclose(back, 0.01 - expected, rtol=1e-6)  # antisymmetric


# -- sampling ---------------------------------------------------------------------------------------------


def test_ranks_hold_exactly_the_one_process_batches_and_skip_resumes_mid_epoch():
    n, batch = 23, 4
    single = list(EpochSampler(n, 0, 1, seed=5, shuffle=True, drop_last=True))
    ranks = [EpochSampler(n, r, 2, seed=5, shuffle=True, drop_last=True) for r in range(2)]
    shards = [list(s) for s in ranks]
    for step in range(n // batch):
        together = {i for s in shards for _, i in s[step * batch // 2 : (step + 1) * batch // 2]}
        assert together == {i for _, i in single[step * batch : (step + 1) * batch]}
    sampler = EpochSampler(n, 0, 1, seed=5, shuffle=True, drop_last=True)
    sampler.set_epoch(3, skip=8)
    resumed = list(sampler)
    sampler.set_epoch(3)
    assert resumed == list(sampler)[8:] and all(e == 3 for e, _ in resumed)


def test_augmented_windows_key_by_epoch_and_index():
    base = [(np.full((2, 78, 200, 3), 90, np.uint8), np.zeros(2, np.float32)) for _ in range(3)]
    ds = AugmentedWindows(base, AugmentConfig(shadow_probability=1.0), seed=0)
    a, b = ds[(0, 1)], ds[(0, 1)]
    assert a[0].dtype == torch.uint8 and a[1].dtype == torch.float32
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], ds[1][0])  # plain index: no augmentation


# -- metrics ----------------------------------------------------------------------------------------------


def test_metrics_go_to_json_lines_and_to_tensorboard_when_installed(tmp_path, monkeypatch):
    calls = []

    class FakeWriter:
        def __init__(self, log_dir, purge_step=None):
            calls.append(("open", Path(log_dir).name, purge_step))

        def add_scalar(self, tag, value, step):
            calls.append((tag, value, step))

        def close(self):
            calls.append(("close",))

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    log = MetricsLog(tmp_path)
    assert log.tensorboard
    for step in range(1, 6):
        log.write("train", step, loss=1.0 / step, note="text is not a scalar")
    log.close()
    assert ("train/loss", 0.25, 4) in calls and not any(c[0] == "train/note" for c in calls)
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4, 5]

    resumed = MetricsLog(tmp_path, resume_step=3)  # a resume from step 3 forgets what came after it
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3]
    assert ("open", "tensorboard", 3) in calls
    resumed.close()
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard")
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # not installed: JSON lines only
    assert not MetricsLog(tmp_path / "plain").tensorboard
