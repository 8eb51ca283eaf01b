"""Open-loop evaluation: metrics against hand-computed values, the replay against a direct loop over the
recorded frames (clean and with the closed loop's noise), same seed → identical numbers, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from drive.cli import main
from drive.eval.open_loop import OpenLoopConfig, OpenLoopRun, run_open_loop
from drive.eval.open_loop_metrics import open_loop_metrics, pool_metrics
from recordings.reader import Recording
from sim.perturbations import GaussianNoise
from tests.drive.recorded_drive import make_checkpoint, record_expert_drive


@pytest.fixture(scope="module")
def drive_and_policy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("open_loop")
    record_expert_drive(folder / "data" / "episode-0000", frames=20, seed=2)
    record_expert_drive(folder / "data" / "episode-0001", frames=12, seed=5, track="forest")
    return folder / "data", make_checkpoint(folder / "ncp.pt")


def test_metrics_on_a_tiny_episode_match_hand_computed_values():
    t = np.array([0.0, 0.05, 0.10, 0.15])
    label = np.array([0.01, 0.02, np.nan, 0.0])  # frame 2 has no label (an imported drive's gap)
    policy = np.array([0.02, 0.02, 0.05, -0.01])
    m = open_loop_metrics(t, policy, label)
    # Errors on the labelled frames: +0.01, 0, −0.01.
    assert m["frames"] == 4 and m["unlabelled_frames"] == 1 and m["sums"]["n"] == 3
    assert m["mae_1pm"] == pytest.approx(0.02 / 3)
    assert m["rmse_1pm"] == pytest.approx(math.sqrt(0.0002 / 3))
    assert m["bias_1pm"] == pytest.approx(0.0, abs=1e-15)
    # Rates of the output: 0, 0.6, −1.2 1/m/s → sqrt((0 + 0.36 + 1.44) / 3).
    assert m["whiteness_1pm_per_s"] == pytest.approx(math.sqrt(0.6))
    # The label has one finite pair: (0.02 − 0.01) / 0.05 = 0.2 1/m/s.
    assert m["label_whiteness_1pm_per_s"] == pytest.approx(0.2)


def test_pooled_metrics_equal_the_metrics_of_the_concatenated_frames():
    rng = np.random.default_rng(0)
    a = (np.arange(7) * 0.05, rng.normal(0, 0.05, 7), rng.normal(0, 0.05, 7))
    b = (np.arange(5) * 0.1, rng.normal(0, 0.05, 5), rng.normal(0, 0.05, 5))
    pooled = pool_metrics([open_loop_metrics(*a), open_loop_metrics(*b)])
    err = np.concatenate([a[1] - a[2], b[1] - b[2]])
    rates = np.concatenate([np.diff(a[1]) / 0.05, np.diff(b[1]) / 0.1])
    assert pooled["frames"] == 12
    assert pooled["mae_1pm"] == pytest.approx(np.mean(np.abs(err)))
    assert pooled["rmse_1pm"] == pytest.approx(np.sqrt(np.mean(err**2)))
    assert pooled["whiteness_1pm_per_s"] == pytest.approx(np.sqrt(np.mean(rates**2)))


def _direct_outputs(episode, checkpoint, noise_variance=0.0, reset_seed=0):
    """The policy run by hand over the recorded frames (the reference the replay must equal)."""
    from drive.closed_loop.drivers import PolicyRunner
    from policies.checkpoint import load_policy
    from sim.types import Observation

    rec = Recording(episode)
    runner = PolicyRunner(load_policy(checkpoint)[0])
    runner.reset()
    noise = GaussianNoise(None, noise_variance)  # type: ignore[arg-type]  # only its perturb() is used
    out = []
    for t, image in enumerate(rec.frames()):
        if noise_variance:
            image = noise.perturb(image, np.random.default_rng((reset_seed, GaussianNoise.salt, t)))
        out.append(runner.act(Observation(image, float(rec.telemetry["speed_mps"][t]), 0.0, t)))
    return np.array(out), rec.telemetry["expert_curvature_1pm"]


@pytest.mark.parametrize("noise_variance", [0.0, 0.2])
def test_replay_equals_a_direct_loop_over_the_recorded_frames(drive_and_policy, tmp_path, noise_variance):
    data, checkpoint = drive_and_policy
    episode = str(data / "episode-0000")
    config = OpenLoopConfig(data=str(data), policies=[checkpoint], noise=[noise_variance])
    run = OpenLoopRun(0, checkpoint, "ncp-ltc", episode, 0, noise_variance, seed=3)
    torch.set_num_threads(1)
    outcome = run_open_loop(config, run, tmp_path)
    expected, label = _direct_outputs(episode, checkpoint, noise_variance, run.reset_seed)
    np.testing.assert_array_equal(outcome.telemetry["policy_curvature_1pm"], expected)
    np.testing.assert_array_equal(outcome.telemetry["expert_curvature_1pm"], label)
    assert outcome.metrics["mae_1pm"] == pytest.approx(np.mean(np.abs(expected - label)))
    assert outcome.hidden is not None and outcome.hidden.shape == (20, 19)


def test_same_policy_and_noise_seed_give_identical_numbers(drive_and_policy, tmp_path):
    data, checkpoint = drive_and_policy
    config = OpenLoopConfig(data=str(data), policies=[checkpoint], noise=[0.2], seeds=[0, 1])
    episode = str(data / "episode-0001")

    def metrics(noise_variance, seed):
        run = OpenLoopRun(0, checkpoint, "ncp-ltc", episode, 1, noise_variance, seed)
        return run_open_loop(config, run, tmp_path).metrics

    assert metrics(0.2, 0) == metrics(0.2, 0)
    # Another noise seed draws other noise (so the check above can fail); clean replays ignore the seed.
    assert metrics(0.2, 0) != metrics(0.2, 1)
    assert metrics(0.0, 0) == metrics(0.0, 1)


def test_cli_open_loop_writes_the_report_with_saliency_video(drive_and_policy, tmp_path, capsys):
    data, checkpoint = drive_and_policy
    out = tmp_path / "report"
    argv = ["eval", "--open-loop", "--data", str(data), "--policy", checkpoint, "--noise", "0,0.1"]
    argv += ["--seeds", "0,1", "--max-frames", "10", "--saliency", "--videos", "2"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    assert "curvature MAE against the label" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mode"] == "open_loop" and len(metrics["runs"]) == 2 * 2 * 2
    assert metrics["data"] == {"episodes": 2, "frames": 20}
    # Per noise seed pooled over both episodes, then mean ± sd over the seeds: clean runs agree exactly.
    agg = metrics["aggregate"]["ncp-ltc"]
    assert agg["0"]["mae_1pm"]["n"] == 2 and agg["0"]["mae_1pm"]["sd"] == 0.0
    assert agg["0.1"]["mae_1pm"]["sd"] > 0.0
    seed0 = [r["metrics"] for r in metrics["runs"] if r["noise_variance"] == 0.1 and r["seed"] == 0]
    assert agg["0.1"]["mae_1pm"]["mean"] == pytest.approx(
        np.mean(
            [
                pool_metrics(seed0)["mae_1pm"],
                pool_metrics(
                    [r["metrics"] for r in metrics["runs"] if r["noise_variance"] == 0.1 and r["seed"] == 1]
                )["mae_1pm"],
            ]
        )
    )
    noisy = [r for r in metrics["runs"] if r["noise_variance"] == 0.1]
    assert all(0.0 < r["ssim"] <= 1.0 for r in noisy)
    videos = [r["video"] for r in metrics["runs"] if r["video"]]
    assert len(videos) == 2 and all((out / v).stat().st_size > 0 for v in videos)
    report = (out / "report.md").read_text()
    assert "## Curvature MAE against the label" in report and "whiteness" in report
    assert (out / "plots" / "error_vs_noise.png").is_file() and (out / "eval.yaml").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--open-loop", "--track", "oval"], "--track applies to the closed loop only"),
        (["--data", "x"], "--data and --max-frames need --open-loop"),
        (["--open-loop"], "data: give the folder"),
        (["--open-loop", "--data", "/nonexistent/drives"], "no such directory"),
    ],
)
def test_cli_open_loop_bad_input_is_one_error_line(drive_and_policy, tmp_path, capsys, extra, message):
    _, checkpoint = drive_and_policy
    assert main(["eval", "--policy", checkpoint, "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_checkpoints_of_one_architecture_are_summarised_over_checkpoints():
    from drive.eval.open_loop_report import AGGREGATED, by_architecture
    from drive.eval.report import summary

    config = OpenLoopConfig(data="d", policies=["a.pt", "b.pt", "c.pt"], noise=[0.0, 0.1])

    def cell(mae):
        return {m: summary([mae] if m == "mae_1pm" else []) for m in AGGREGATED}

    table = {
        "ncp-ltc@seed0": {"0": cell(0.010), "0.1": cell(0.030)},
        "ncp-ltc@seed1": {"0": cell(0.020), "0.1": cell(0.050)},
        "cnn": {"0": cell(0.015), "0.1": cell(0.060)},
    }
    result = by_architecture(config, table)
    assert list(result) == ["ncp-ltc"]  # one checkpoint of cnn: nothing to summarise over
    assert result["ncp-ltc"]["0"]["mae_1pm"] == {
        "mean": pytest.approx(0.015),
        "sd": pytest.approx(0.00707107),
        "n": 2,
    }
    assert result["ncp-ltc"]["0.1"]["mae_1pm"]["mean"] == pytest.approx(0.040)
