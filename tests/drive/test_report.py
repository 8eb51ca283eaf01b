"""The report aggregates exactly (mean ± sample sd over seeds), pairs clean and noisy saliency by seed,
leaves teleport steps out of the Lipschitz constants, writes valid JSON and the Markdown tables, and draws
its figures."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from drive.eval.episode import TRAJECTORY_COLUMNS, EpisodeOutcome
from drive.eval.interpret import saliency_ssim
from drive.eval.plan import EpisodeSpec, EvalConfig
from drive.eval.plots import write_plots
from drive.eval.report import analyse, format_stat, summary, write_report

NOISE = [0.0, 0.2]
SEEDS = [0, 1, 2]
# interventions[label][noise][seed]
COUNTS = {"ncp-ltc": {0.0: [1, 2, 3], 0.2: [2, 2, 5]}, "cnn": {0.0: [4, 4, 7], 0.2: [9, 11, 13]}}


def _outcome(index, label, noise, seed, interventions, saliency=None, hidden=None):
    t = np.arange(50)
    telemetry = {k: np.zeros(50) for k in TRAJECTORY_COLUMNS}
    telemetry.update(
        frame=t,
        timestamp_s=t * 0.05,
        x_m=np.cos(t / 8.0) * 30,
        y_m=np.sin(t / 8.0) * 30,
        speed_mps=np.full(50, 8.0),
        intervention=np.zeros(50, bool),
    )
    log = [
        {
            "frame": 10 + 5 * k,
            "time_s": 0.5 + 0.25 * k,
            "cause": "offset",
            "lateral_offset_m": -1.05,
            "heading_error_rad": -0.2,
            "progress_m": 4.0,
        }
        for k in range(interventions)
    ]
    metrics = {
        "interventions": interventions,
        "interventions_per_km": interventions / 0.4,
        "autonomy_pct": 50.0,
        "mean_abs_offset_m": 0.1 * (seed + 1),
        "max_abs_offset_m": 0.9,
        "rms_curvature_rate_1pm_per_s": 0.01,
        "distance_m": 400.0,
        "elapsed_s": 2.45,
        "laps": 0,
        "frames": 50,
    }
    spec = EpisodeSpec(index, f"/ckpt/{label}.pt", label, "summer", noise, seed)
    return EpisodeOutcome(spec, metrics, log, telemetry, hidden, saliency, None, wall_s=1.0)


def _outcomes():
    rng = np.random.default_rng(0)
    clean_maps = {s: rng.integers(0, 256, (6, 78, 200), dtype=np.uint8) for s in SEEDS}
    outcomes = []
    for label, by_noise in COUNTS.items():
        for noise in NOISE:
            for seed, count in zip(SEEDS, by_noise[noise]):
                maps = clean_maps[seed].copy()
                if noise > 0:
                    maps[seed:] = rng.integers(0, 256, maps[seed:].shape, dtype=np.uint8)
                hidden = np.cumsum(rng.normal(size=(50, 3)), axis=0).astype(np.float32)
                for frame in 10 + 5 * np.arange(count):
                    hidden[frame:] += 100.0  # the state jumps where the car is teleported
                outcomes.append(_outcome(len(outcomes), label, noise, seed, count, maps, hidden))
    return outcomes, clean_maps


@pytest.fixture
def config():
    return EvalConfig(
        policies=["/ckpt/ncp-ltc.pt", "/ckpt/cnn.pt"],
        noise=NOISE,
        seeds=SEEDS,
        laps=1,
        saliency=True,
        saliency_frames=5,
    )


def test_summary_is_mean_and_sample_sd():
    s = summary([1, 2, 3, None, float("nan")])
    assert s == {"mean": 2.0, "sd": pytest.approx(1.0), "n": 3}
    assert summary([4.0]) == {"mean": 4.0, "sd": None, "n": 1}
    assert summary([]) == {"mean": None, "sd": None, "n": 0}
    assert format_stat({"mean": 2.0, "sd": 1.0, "n": 3}) == "2.00 ± 1.00"
    assert format_stat({"mean": 0.925, "sd": None, "n": 1}, "{:.1%}") == "92.5%"
    assert format_stat({"mean": None, "sd": None, "n": 0}) == "—"


def test_aggregates_ssim_pairing_and_lipschitz(config):
    outcomes, clean_maps = _outcomes()
    analysis = analyse(config, outcomes)
    agg = analysis["aggregate"]
    for label, by_noise in COUNTS.items():
        for noise in NOISE:
            stat = agg[label]["all"][f"{noise:g}"]["interventions"]
            assert stat["mean"] == pytest.approx(np.mean(by_noise[noise]))
            assert stat["sd"] == pytest.approx(np.std(by_noise[noise], ddof=1))
            assert stat["n"] == 3
            assert agg[label]["summer"][f"{noise:g}"]["interventions"] == stat
    assert agg["cnn"]["all"]["0.2"]["interventions_per_km"]["mean"] == pytest.approx(11 / 0.4)
    assert agg["ncp-ltc"]["all"]["0"]["mean_abs_offset_m"]["mean"] == pytest.approx(0.2)

    episodes = {e["id"]: e for e in analysis["episodes"]}
    # Noisy seed s replaced frames s..5 of the clean maps: SSIM = mean of 1 for the first s frames and
    # the SSIM of the replaced ones, over the 5-frame window.
    noisy = next(
        o for o in outcomes if o.spec.label == "cnn" and o.spec.noise_variance == 0.2 and o.spec.seed == 2
    )
    expected = saliency_ssim(clean_maps[2], noisy.saliency, 5).mean()
    assert episodes["cnn_summer_noise0.2_seed2"]["ssim"] == pytest.approx(expected)
    assert 0.4 < expected < 0.5  # two identical frames of five, three unrelated
    assert episodes["cnn_summer_noise0.2_seed0"]["ssim"] < 0.1
    assert episodes["cnn_summer_noise0_seed0"]["ssim"] is None  # clean is the reference
    assert episodes["cnn_summer_noise0.2_seed2"]["ssim_frames"] == 5

    # The +100 jumps sit on teleport frames and are left out.
    lip = episodes["cnn_summer_noise0.2_seed2"]["lipschitz"]
    hidden = noisy.hidden
    steps = np.abs(np.diff(hidden.astype(np.float64), axis=0))
    steps[[9 + 5 * k for k in range(13) if 10 + 5 * k < 50]] = 0.0
    np.testing.assert_allclose(lip, steps.max(axis=0))
    assert max(lip) < 50
    per_policy = analysis["lipschitz"]["cnn"]["0.2"]
    np.testing.assert_allclose(
        per_policy, np.max([episodes[f"cnn_summer_noise0.2_seed{s}"]["lipschitz"] for s in SEEDS], axis=0)
    )


def test_metrics_json_and_markdown(config, tmp_path):
    outcomes, _ = _outcomes()
    outcomes[0].metrics["interventions_per_km"] = float("nan")  # no distance: JSON gets null
    analysis = analyse(config, outcomes)
    content = write_report(config, outcomes, analysis, tmp_path, figures=["plots/x.png"])
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["config"]["noise"] == NOISE and data["config"]["safety"]["max_offset_m"] == 1.0
    assert len(data["episodes"]) == 12 and data["episodes"][0]["metrics"]["interventions_per_km"] is None
    assert data["aggregate"] == json.loads(json.dumps(content["aggregate"]))
    md = (tmp_path / "report.md").read_text()
    assert "| ncp-ltc | 2.00 ± 1.00 | 3.00 ± 1.73 |" in md
    assert "| cnn | 5.00 ± 1.73 | 11.00 ± 2.00 |" in md
    assert "## Saliency SSIM" in md and "![x](plots/x.png)" in md
    assert "Track `forest`" in md


def test_plots_are_written(config, tmp_path):
    outcomes, _ = _outcomes()
    analysis = analyse(config, outcomes)
    paths = write_plots(config, outcomes, analysis, tmp_path)
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [
            "interventions_vs_noise.png",
            "ssim_vs_noise.png",
            "trajectory_ncp-ltc.png",
            "trajectory_cnn.png",
            "neurons_ncp-ltc.png",
            "neurons_cnn.png",
            "neuron_map_ncp-ltc.png",  # no wiring given here: the top principal components on the map
            "neuron_map_cnn.png",
            "lipschitz.png",
        ]
    )
    for path in paths:
        image = cv2.imread(str(path))
        assert image is not None and image.shape[0] > 200 and image.shape[1] > 300
        assert image.std() > 10  # not blank
