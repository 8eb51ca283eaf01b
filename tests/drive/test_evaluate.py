"""The evaluation matrix: plan, validation, same seeds → identical results, parallel workers = serial,
the report folder (metrics.json, report.md, plots, a readable video) and the `drive eval` command."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
import torch

from common.strict_config import ConfigError, load_config
from drive.cli import main
from drive.eval.evaluate import evaluate, run_episodes
from drive.eval.plan import EvalConfig, plan_episodes, policy_labels


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from policies.checkpoint import save_checkpoint
    from policies.registry import build_policy

    folder = tmp_path_factory.mktemp("ckpt")
    paths = {}
    for name in ("ncp-ltc", "cnn"):
        torch.manual_seed(1)
        paths[name] = str(save_checkpoint(folder / f"{name}.pt", build_policy(name)))
    return paths


def test_plan_covers_the_matrix_and_picks_video_episodes():
    config = EvalConfig(
        policies=["expert", "a.pt"],
        noise=[0, 0.1, 0.3],
        conditions=["summer", "winter"],
        seeds=[4, 2],
        videos=3,
    )
    specs = plan_episodes(config, ["expert", "ncp-ltc"])
    assert len(specs) == 2 * 3 * 2 * 2 and [s.index for s in specs] == list(range(24))
    cells = {(s.label, s.condition, s.noise_variance, s.seed) for s in specs}
    assert len(cells) == 24
    videos = [(s.label, s.condition, s.noise_variance, s.seed) for s in specs if s.video]
    # Per policy: the first seed, first condition, every noise level; none for the expert (no camera).
    assert videos == [("ncp-ltc", "summer", n, 4) for n in (0.0, 0.1, 0.3)]
    assert specs[5].episode_id == "expert_summer_noise0.3_seed2"
    assert policy_labels(["x/a.pt", "y/b.pt", "expert"], ["lstm", "lstm", "expert"]) == [
        "lstm@a",
        "lstm@b",
        "expert",
    ]
    with pytest.raises(ValueError, match="share the label"):
        policy_labels(["x/a.pt", "y/a.pt"], ["lstm", "lstm"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([], "at least one checkpoint"),
        (["policies=[expert]", "noise=[0,-0.1]"], "variances must be ≥ 0"),
        (["policies=[expert]", "seeds=[1,1]"], "repeated"),
        (["policies=[expert]", "conditions=[monsoon]"], "unknown condition 'monsoon'"),
        (["policies=[expert]", "track=moon"], "unknown track 'moon'"),
        (["policies=[expert]", "laps=null"], "needs an end"),
        (["policies=[expert]", "safety.max_offset_m=-1"], "max_offset_m must be > 0"),
        (["policies=[expert]", "lap=2"], "unknown config key 'lap'"),
        (["policies=[expert]", "sim.fov_deg=70"], "unknown config key 'sim.fov_deg'"),
        (["policies=[expert]", "sim=carl"], "sim.backend: unknown simulator backend 'carl'"),
        (["policies=[expert]", "noise_space=latent"], "noise_space"),
        (["policies=[expert]", 'perturbations=[{"name": "fog"}]'], "unknown perturbation 'fog'"),
        (["policies=[expert]", 'perturbations=[{"name": "blur", "sigma": 1}]'], "unknown parameter 'sigma'"),
    ],
)
def test_bad_configs_are_errors_naming_the_problem(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(EvalConfig, None, overrides)


def test_noise_levels_become_gaussian_specs_in_one_place_and_the_rows_read_the_chain(tmp_path):
    blur = {"name": "blur", "sigma_px": 1.0}
    config = load_config(
        EvalConfig,
        {"policies": ["expert"], "noise": [0.0, 0.2], "seeds": [0], "max_steps": 5, "perturbations": [blur]},
        ["noise_space=standardized", "track=oval"],
    )
    clean, noisy = plan_episodes(config, ["expert"])
    assert config.episode_perturbations(clean) == [blur]
    gaussian = {"name": "gaussian", "variance": 0.2, "space": "standardized"}
    assert config.episode_perturbations(noisy) == [gaussian, blur]
    outcomes = run_episodes(config, tmp_path, progress=False, specs=[noisy])
    record = dataclasses.replace(config, record=True)
    run_episodes(record, tmp_path / "rec", progress=False, specs=[noisy])
    from recordings.reader import Recording

    rec = Recording(tmp_path / "rec" / "episodes" / noisy.episode_id)
    assert np.all(rec.telemetry["noise_variance"] == np.float32(0.2))  # filled from the wrapper chain
    assert outcomes[0].metrics["frames"] == 6


def _quick(checkpoints, **changes):
    config = EvalConfig(
        policies=["expert", checkpoints["ncp-ltc"]],
        noise=[0.0, 0.3],
        seeds=[0, 1],
        laps=1,
        max_steps=60,
        saliency=True,
        saliency_frames=40,
        faithfulness_frames=2,
    )
    return dataclasses.replace(config, **changes)


def test_same_seeds_give_identical_outcomes(checkpoints, tmp_path):
    config = _quick(checkpoints, noise=[0.3], policies=[checkpoints["cnn"]])
    first = run_episodes(config, tmp_path / "a", progress=False)
    second = run_episodes(config, tmp_path / "b", progress=False)
    for a, b in zip(first, second):
        assert a.metrics == b.metrics and a.interventions == b.interventions
        for key in a.telemetry:
            np.testing.assert_array_equal(a.telemetry[key], b.telemetry[key])
        np.testing.assert_array_equal(a.hidden, b.hidden)  # the CNN's last hidden layer (100 units)
        np.testing.assert_array_equal(a.saliency, b.saliency)
    assert first[0].hidden.shape == (61, 100) and first[0].saliency.shape == (40, 78, 200)
    # Different seeds start elsewhere on the track.
    assert first[0].telemetry["x_m"][0] != first[1].telemetry["x_m"][0]


def test_parallel_workers_give_the_serial_results_and_a_full_report(checkpoints, tmp_path):
    config = _quick(checkpoints, videos=1, video_s=1.0)
    serial = evaluate(config, tmp_path / "serial", progress=False)
    parallel = evaluate(dataclasses.replace(config, workers=2), tmp_path / "parallel", progress=False)
    for key in ("episodes", "aggregate", "lipschitz", "figures"):
        assert serial[key] == parallel[key], key
    assert json.loads((tmp_path / "parallel" / "metrics.json").read_text())["episodes"] == json.loads(
        json.dumps(serial["episodes"])
    )

    episodes = {e["id"]: e for e in serial["episodes"]}
    assert len(episodes) == 8
    # The expert never needs the safety driver, with or without noise; it has no saliency or neurons.
    for e in episodes.values():
        if e["label"] == "expert":
            assert e["metrics"]["interventions"] == 0 and e["pc1_explained"] is None and e["ssim"] is None
    noisy = episodes["ncp-ltc_summer_noise0.3_seed1"]
    assert 0.0 < noisy["ssim"] < 1.0 and noisy["ssim_frames"] == 40
    assert 0.0 < noisy["pc1_explained"] <= 1.0 and len(noisy["lipschitz"]) == 19
    assert serial["aggregate"]["ncp-ltc"]["all"]["0.3"]["interventions"]["n"] == 2

    out = tmp_path / "serial"
    assert (out / "eval.yaml").is_file() and (out / "report.md").read_text().startswith(
        "# Closed-loop evaluation"
    )
    for figure in serial["figures"]:
        assert (out / figure).stat().st_size > 5000
    video = out / episodes["ncp-ltc_summer_noise0_seed0"]["video"]
    capture = cv2.VideoCapture(str(video))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 20  # 1 s at 20 Hz
    ok, frame = capture.read()
    assert ok and frame.shape[1] == 800 and frame.std() > 10
    assert [e["id"] for e in serial["episodes"] if e["video"]] == ["ncp-ltc_summer_noise0_seed0"]


def test_drive_eval_command(checkpoints, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(
        [
            "eval",
            "--policy",
            "expert",
            "--policy",
            checkpoints["cnn"],
            "--noise",
            "0,0.1",
            "--seeds",
            "3",
            "--max-steps",
            "20",
            "--track",
            "oval",
            "--out",
            str(out),
            "--quiet",
            "--set",
            "laps=1",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "expert" in printed and "cnn" in printed and "report.md" in printed
    data = json.loads((out / "metrics.json").read_text())
    assert data["config"]["track"] == "oval" and data["config"]["noise"] == [0.0, 0.1]
    assert [e["id"] for e in data["episodes"]] == [
        "expert_summer_noise0_seed3",
        "expert_summer_noise0.1_seed3",
        "cnn_summer_noise0_seed3",
        "cnn_summer_noise0.1_seed3",
    ]
    assert all(e["metrics"]["frames"] == 21 for e in data["episodes"])

    code = main(["eval", "--policy", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x"), "--quiet"])
    assert code == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_policies_that_trained_on_the_evaluation_track_are_flagged(tmp_path):
    from drive.eval.evaluate import describe_policies
    from policies.checkpoint import save_checkpoint
    from policies.registry import build_policy

    for name, track in (("a", "forest"), ("b", "country")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "meta.json").write_text(json.dumps({"track": track}))
    data = {"train_episodes": [str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "gone")]}
    ckpt = save_checkpoint(tmp_path / "p.pt", build_policy("lstm"), step=7, extra={"data": data})
    rows = describe_policies(EvalConfig(policies=["expert", str(ckpt)], track="forest"))
    assert rows[0]["label"] == "expert" and rows[0]["trained_tracks"] is None
    assert rows[1] == {
        "policy": str(ckpt),
        "name": "lstm",
        "step": 7,
        "trained_tracks": ["country", "forest"],
        "label": "lstm",
        "trained_on_eval_track": True,
    }
    assert not describe_policies(EvalConfig(policies=[str(ckpt)], track="hills"))[0]["trained_on_eval_track"]
