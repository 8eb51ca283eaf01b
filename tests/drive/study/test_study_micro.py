"""A micro study (2 policies × 2 seeds, tiny drives, both protocols) through `drive study`: every job runs,
the tables have intervals over training seeds, a rerun redoes nothing and gives identical tables, an
interrupted study finishes without redoing finished work, and stale or contradictory set-ups are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

import drive.study.jobs as jobs
from drive.cli import main
from drive.study.runner import load_study, run_study

ROOT = Path(__file__).resolve().parents[3]
TRAIN = ["epochs=1", "batch=2", "data.window=4", "data.stride=4", "log_interval=1"]
MICRO = {
    "name": "micro",
    "protocols": [
        {
            "name": "held_out",
            "kind": "held_out",
            "track": "forest",
            "record": {"tracks": ["oval"], "conditions": ["summer"], "episodes": 2, "minutes": 0.2},
        },
        {
            "name": "in_distribution",
            "kind": "in_distribution",
            "track": "forest",
            "record": {
                "tracks": ["forest"],
                "conditions": ["summer"],
                "episodes": 2,
                "minutes": 0.2,
                "seed": 100,
            },
        },
    ],
    "train": {
        "config": str(ROOT / "launch" / "train_default.yaml"),
        "policies": ["ncp-ltc", "lstm"],
        "seeds": [0, 1],
        "overrides": TRAIN,
    },
    "eval": {
        "noise": [0.0, 0.2],
        "seeds": [0],
        "laps": None,
        "max_steps": 20,
        "saliency": True,
        "saliency_methods": ["visual_backprop", "grad_cam"],
        "faithfulness_frames": 2,
    },
    "workers": 1,
}


def _write(root: Path, study: dict) -> Path:
    path = root / "micro.yaml"
    path.write_text(yaml.safe_dump({**study, "out": "out"}))  # relative: against the study file's folder
    return path


@pytest.fixture(scope="module")
def studied(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    path = _write(root, MICRO)
    assert main(["study", str(path), "--quiet"]) == 0
    return path, root / "out"


def test_every_job_ran_and_the_report_has_intervals(studied):
    _, out = studied
    for protocol in ("held_out", "in_distribution"):
        for policy in ("ncp-ltc", "lstm"):
            for seed in (0, 1):
                assert (out / protocol / "train" / policy / f"seed-{seed}" / "DONE").is_file()
                assert (out / protocol / "eval" / policy / f"seed-{seed}" / "metrics.json").is_file()
    summary = json.loads((out / "study.json").read_text())
    cell = summary["aggregate"]["held_out"]["lstm"]["0.2"]["interventions_per_km"]
    assert cell["n"] == 2 and cell["low"] <= cell["mean"] <= cell["high"]
    ssim = summary["aggregate"]["in_distribution"]["ncp-ltc"]["0.2"]["ssim"]
    assert ssim["n"] == 2 and 0.0 < ssim["mean"] <= 1.0
    assert set(summary["differences_interventions_per_km"]["held_out"]) == {"lstm"}
    assert summary["training"]["held_out"]["ncp-ltc"]["1"]["best_val_ratio"] > 0
    report = (out / "report.md").read_text()
    for text in (
        "## Training: best validation ratio per seed",
        "## Protocol `held_out` (held_out)",
        "## Protocol `in_distribution` (in_distribution)",
        "Reading: ",
        "other policy − ncp-ltc",
    ):
        assert text in report
    assert (out / "plots" / "interventions_per_km_vs_noise_held_out.png").is_file()
    assert (out / "plots" / "noise_strip.png").is_file()


def test_the_report_has_the_attention_tables_over_training_seeds(studied):
    _, out = studied
    attention = json.loads((out / "study.json").read_text())["attention"]
    for policy in ("ncp-ltc", "lstm"):
        for method in ("visual_backprop", "grad_cam"):
            cell = attention["held_out"][policy][method]["0.2"]
            assert cell["deletion_gain"]["n"] == 2 and cell["ssim"]["n"] == 2
            gain = cell["deletion_gain"]
            # the gain is the difference of the two AUC means, over the same seeds
            assert gain["mean"] == pytest.approx(
                cell["deletion_auc"]["mean"] - cell["deletion_random_auc"]["mean"], abs=1e-12
            )
            assert gain["low"] <= gain["mean"] <= gain["high"]
        assert attention["held_out"][policy]["visual_backprop"]["0"]["rank:grad_cam"]["n"] == 2
    report = (out / "report.md").read_text()
    assert "## Attention: faithfulness of the saliency maps, SSIM, agreement between methods" in report
    assert "| ncp-ltc | Grad-CAM | 0.2 |" in report and "| lstm | VBP vs Grad-CAM |" in report
    assert "held_out/eval/ncp-ltc/seed-0/plots/attention_ncp-ltc.png" in report


def test_episode_table_is_pandas_readable_with_one_row_per_episode(studied):
    _, out = studied
    table = pd.read_parquet(out / "episodes.parquet")
    # 2 protocols × 2 policies × 2 training seeds × 2 noise levels × 1 condition × 1 evaluation seed
    assert len(table) == 16
    assert set(table["train_seed"]) == {0, 1} and set(table["noise_variance"]) == {0.0, 0.2}
    csv = pd.read_csv(out / "episodes.csv")
    assert list(csv.columns) == list(table.columns) and len(csv) == 16
    assert csv["interventions_per_km"].tolist() == pytest.approx(table["interventions_per_km"].tolist())


def test_rerun_redoes_nothing_and_gives_identical_tables(studied):
    path, out = studied
    before = json.loads((out / "study.json").read_text())
    config = load_study(path)
    outcome, summary = run_study(config, progress=False)
    assert outcome.ok and all(result.skipped for result in outcome.results.values())
    for key in ("aggregate", "differences_interventions_per_km", "training"):
        assert summary[key] == before[key]


def test_an_interrupted_study_finishes_without_redoing_finished_work(tmp_path, monkeypatch):
    study = {**MICRO, "protocols": MICRO["protocols"][:1], "train": {**MICRO["train"], "seeds": [0]}}
    path = _write(tmp_path, study)
    real = jobs.run_eval_job

    def dies_on_lstm(config, job):
        if job.policy == "lstm":
            raise RuntimeError("worker killed")
        return real(config, job)

    monkeypatch.setattr(jobs, "run_eval_job", dies_on_lstm)
    assert main(["study", str(path), "--quiet"]) == 1
    report = (tmp_path / "out" / "report.md").read_text()
    assert "eval/held_out/lstm/seed-0" in report and "worker killed" in report
    monkeypatch.setattr(jobs, "run_eval_job", real)
    outcome, _ = run_study(load_study(path), progress=False)
    ran = {key for key, result in outcome.results.items() if not result.skipped}
    assert outcome.ok and ran == {"eval/held_out/lstm/seed-0"}


def test_a_changed_study_refuses_to_reuse_results_it_did_not_make(studied, tmp_path):
    path, out = studied
    changed = yaml.safe_load(path.read_text())
    changed["eval"]["noise"] = [0.0, 0.3]
    changed["out"] = str(out)
    other = tmp_path / "changed.yaml"
    other.write_text(yaml.safe_dump(changed))
    outcome, _ = run_study(load_study(other), progress=False)
    assert not outcome.ok
    assert all("changed since" in error for error in outcome.failures.values())
    assert set(outcome.failures) == {k for k in outcome.failures if k.startswith("eval/")}


def test_a_protocol_whose_drives_contradict_its_kind_is_refused_before_any_job(tmp_path, capsys):
    wrong = {**MICRO["protocols"][1], "name": "wrong", "kind": "held_out"}
    path = _write(tmp_path, {**MICRO, "protocols": [wrong]})
    assert main(["study", str(path), "--quiet"]) == 2
    assert "held_out, but its recordings" in capsys.readouterr().err
    assert not (tmp_path / "out" / "wrong" / "train").exists()
