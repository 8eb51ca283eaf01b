"""Saliency in the closed loop: every method selectable, the loop's map equals the one recomputed from the
captured step, and an evaluation's report has the attention section (maps, SSIM per method, faithfulness,
rank correlation, neuron map with the NCP's layers)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from drive.cli import main
from drive.closed_loop.drivers import PolicyRunner
from drive.eval.attention import better_than_random, faithfulness_indices, rank_correlations
from drive.eval.evaluate import evaluate
from drive.eval.plan import EvalConfig
from perception.saliency_methods import SALIENCY_METHODS
from policies.policy_saliency import saliency_maps
from sim.types import Observation


@pytest.fixture(scope="module")
def ncp_checkpoint(tmp_path_factory):
    from policies.checkpoint import save_checkpoint
    from policies.registry import build_policy

    torch.manual_seed(4)
    return str(save_checkpoint(tmp_path_factory.mktemp("ckpt") / "ncp-ltc.pt", build_policy("ncp-ltc")))


@pytest.mark.parametrize("method", SALIENCY_METHODS)
def test_the_loop_map_equals_the_map_recomputed_from_the_captured_step(method):
    from policies.registry import build_policy

    torch.manual_seed(0)
    policy = build_policy("ncp-ltc").eval()
    runner = PolicyRunner(policy, saliency=method)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (78, 200, 3), dtype=np.uint8) for _ in range(3)]
    runner.reset()
    for k, image in enumerate(images):
        state = runner.state_array()
        runner.act(Observation(image=image, speed_mps=4.0, timestamp_s=0.05 * k, frame=k))
    assert np.abs(state).sum() > 0  # the last step started from a non-zero state
    again = saliency_maps(policy, torch.from_numpy(images[-1][None]), torch.from_numpy(state), [method])
    assert runner.saliency is not None and runner.saliency.shape == (78, 200)
    np.testing.assert_allclose(runner.saliency, again[method][0].numpy(), atol=1e-5)
    assert 0.0 <= runner.saliency.min() and runner.saliency.max() <= 1.0


def test_eval_report_has_the_attention_section(ncp_checkpoint, tmp_path):
    config = EvalConfig(
        policies=[ncp_checkpoint],
        noise=[0.0, 0.2],
        seeds=[0],
        laps=1,
        max_steps=8,
        track="oval",
        saliency=True,
        saliency_methods=["grad_cam", "visual_backprop", "integrated_gradients"],
        saliency_frames=4,
        faithfulness_frames=2,
    )
    result = evaluate(config, tmp_path, progress=False)
    noisy = next(e for e in result["episodes"] if e["noise_variance"] == 0.2)
    attention = noisy["attention"]
    assert attention["methods"] == config.saliency_methods and attention["frames"] == 4
    assert set(attention["rank_correlation"]) == {
        "grad_cam|visual_backprop",
        "grad_cam|integrated_gradients",
        "visual_backprop|integrated_gradients",
    }
    for method in config.saliency_methods:
        figures = attention["faithfulness"][method]
        assert figures["frames"] == 2 and figures["deletion_random_auc"] > 0
        assert 0.0 < noisy["ssim_by_method"][method] < 1.0
    assert noisy["ssim"] == pytest.approx(noisy["ssim_by_method"]["grad_cam"], abs=1e-3)  # the first method
    md = (tmp_path / "report.md").read_text()
    for text in ("## Attention (saliency), per policy", "### ncp-ltc", "| Grad-CAM | 0.2 |", "VBP vs IG"):
        assert text in md, text
    assert "![attention_ncp-ltc](plots/attention_ncp-ltc.png)" in md
    assert (tmp_path / "plots" / "neuron_map_ncp-ltc.png").stat().st_size > 20000
    json.loads((tmp_path / "metrics.json").read_text())  # valid JSON throughout


def test_neuron_map_titles_carry_the_ncp_layers(ncp_checkpoint, tmp_path):
    from drive.eval.attention_plots import neuron_panels
    from drive.eval.evaluate import run_episodes

    config = EvalConfig(policies=[ncp_checkpoint], noise=[0.0], seeds=[0], laps=1, max_steps=8, track="oval")
    (outcome,) = run_episodes(config, tmp_path, progress=False)
    titles = [title for title, _ in neuron_panels(outcome)]
    assert titles[0] == "motor 0" and titles[1:7] == [f"command {i}" for i in range(1, 7)]
    assert titles[7:] == [f"inter {i}" for i in range(7, 19)]


def test_rank_correlation_and_verdict_helpers():
    a = np.random.default_rng(0).random((3, 12, 12))
    corr = rank_correlations({"a": a, "same": a * 2, "flipped": 1 - a, "flat": np.zeros_like(a)})
    assert corr["a|same"] == pytest.approx(1.0) and corr["a|flipped"] == pytest.approx(-1.0)
    assert corr["a|flat"] is None
    assert better_than_random(0.1, None) and better_than_random(-1.0, 0.01)
    assert not better_than_random(-0.1, float("nan")) and not better_than_random(None, None)
    assert faithfulness_indices(3, 10).tolist() == [0, 1, 2] and faithfulness_indices(0, 5).size == 0


def test_unknown_saliency_method_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown saliency method 'smoothgrad'"):
        EvalConfig(policies=["expert"], saliency_methods=["smoothgrad"])
    code = main(
        ["eval", "--policy", "expert", "--saliency-method", "gradcam", "--out", str(tmp_path), "--quiet"]
    )
    assert code == 2 and "unknown saliency method 'gradcam'" in capsys.readouterr().err
