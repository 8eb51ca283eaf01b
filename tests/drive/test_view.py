"""`drive view --save`: the .rrd read back with the Rerun SDK (entity paths, frame counts, events), and the
one-line install hint without the view extra."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from drive.cli import main
from tests.drive.recorded_drive import make_checkpoint, record_expert_drive

rerun = pytest.importorskip("rerun", reason="the view extra (rerun-sdk) is not installed")


def _read_back(path):
    """Entity path -> (rows on the `frame` timeline, frame values, the chunks' record batches)."""
    from rerun.chunk import RrdReader

    found: dict[str, dict] = {}
    for chunk in RrdReader(path).stream():
        entry = found.setdefault(chunk.entity_path, {"rows": 0, "frames": [], "batches": []})
        if chunk.is_static:
            continue
        batch = chunk.to_record_batch()
        entry["rows"] += chunk.num_rows
        entry["frames"] += batch.column("frame").to_pylist()
        entry["batches"].append(batch)
    return found


def test_view_save_writes_an_rrd_with_every_stream_of_an_evaluation(tmp_path, capsys):
    from drive.eval.evaluate import run_episodes
    from drive.eval.plan import EvalConfig
    from drive.eval.report import analyse, write_report
    from sim.safety_driver import SafetyDriverConfig

    checkpoint = make_checkpoint(tmp_path / "ncp.pt")
    config = EvalConfig(
        policies=[checkpoint],
        noise=[0.0],
        seeds=[0],
        track="oval",
        laps=None,
        max_steps=24,
        saliency=True,
        record=True,
        # A tight trigger so the untrained policy is taken over within the few frames.
        safety=SafetyDriverConfig(max_offset_m=0.05, cooldown_s=0.2),
    )
    # The evaluation's own episodes and report (plots left out: they cost seconds and are not viewed).
    outcomes = run_episodes(config, tmp_path / "eval", progress=False)
    metrics = write_report(config, outcomes, analyse(config, outcomes), tmp_path / "eval")
    interventions = metrics["episodes"][0]["interventions"]
    assert interventions, "the test needs at least one intervention"
    out = tmp_path / "view" / "eval.rrd"
    assert main(["view", str(tmp_path / "eval"), "--save", str(out), "--quiet"]) == 0
    assert "1 drive(s), 25 frames written" in capsys.readouterr().out

    found = _read_back(out)
    prefix = "/ncp-ltc_summer_noise0_seed0"
    per_frame = [
        "camera/image",
        "camera/saliency",
        "curvature/policy",
        "curvature/label",
        "neurons",
        "map/ego",
    ]
    for name in per_frame:
        assert found[f"{prefix}/{name}"]["rows"] == 25, name
        assert sorted(found[f"{prefix}/{name}"]["frames"]) == list(range(25)), name
    assert {f"{prefix}/map/track", f"{prefix}/map/trajectory"} <= set(found)  # static map layers
    # One event per intervention, at its frame, with the cause from metrics.json.
    events = found[f"{prefix}/events"]
    assert sorted(events["frames"]) == sorted(int(i["frame"]) for i in interventions)
    texts = [t for b in events["batches"] for row in b.column("TextLog:text").to_pylist() for t in row]
    assert all(t.startswith("safety driver took over: ") for t in texts)
    # The neuron entity holds the 19 NCP neurons of every frame.
    neurons = [
        r for b in found[f"{prefix}/neurons"]["batches"] for r in b.column("Scalars:scalars").to_pylist()
    ]
    assert {len(np.ravel(row)) for row in neurons} == {19}


def test_view_save_of_one_recorded_drive(tmp_path):
    episode = record_expert_drive(tmp_path / "episode-0000", frames=12)
    out = tmp_path / "drive.rrd"
    assert main(["view", str(episode), "--save", str(out), "--quiet"]) == 0
    found = _read_back(out)
    assert found["/camera/image"]["rows"] == 12 and found["/curvature/label"]["rows"] == 12
    assert "/camera/saliency" not in found and "/neurons" not in found  # an expert drive has neither


def test_view_without_rerun_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
    episode = tmp_path / "missing-is-fine"
    monkeypatch.setitem(sys.modules, "rerun", None)  # import rerun now raises ImportError
    assert main(["view", str(episode), "--save", str(tmp_path / "x.rrd")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["drive view: error: the viewer needs the Rerun SDK: pip install -e '.[view]'"]


@pytest.mark.parametrize(
    ("make", "message"),
    [(lambda p: p / "nothing-here", "no such episode"), (lambda p: p, "no recorded drive in it")],
)
def test_view_bad_target_is_one_error_line(tmp_path, capsys, make, message):
    assert main(["view", str(make(tmp_path)), "--save", str(tmp_path / "x.rrd")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_view_save_of_an_open_loop_evaluation_lines_runs_up_with_the_recorded_drive(tmp_path, capsys):
    from drive.eval.open_loop import OpenLoopConfig, plan_runs, run_open_loop
    from drive.eval.open_loop_report import analyse, write_report

    episode = record_expert_drive(tmp_path / "data" / "episode-0000", frames=14)
    checkpoint = make_checkpoint(tmp_path / "ncp.pt")
    config = OpenLoopConfig(
        data=str(tmp_path / "data"), policies=[checkpoint], noise=[0.0, 0.1], saliency=True, saliency_frames=5
    )
    out = tmp_path / "open"
    outcomes = [run_open_loop(config, r, out) for r in plan_runs(config, ["ncp-ltc"], [episode])]
    write_report(config, analyse(config, outcomes), out)
    assert main(["view", str(out), "--save", str(tmp_path / "open.rrd"), "--quiet"]) == 0
    assert "1 drive(s), 42 frames written" in capsys.readouterr().out  # 14 recorded + 2 runs × 14

    found = _read_back(tmp_path / "open.rrd")
    assert found["/episode-0000/camera/image"]["rows"] == 14
    assert found["/episode-0000/curvature/label"]["rows"] == 14
    for run in ("noise0_seed0", "noise0.1_seed0"):
        base = f"/episode-0000/ncp-ltc/{run}"
        assert sorted(found[f"{base}/curvature"]["frames"]) == list(range(14))
        assert found[f"{base}/neurons"]["rows"] == 14
        assert sorted(found[f"{base}/saliency"]["frames"]) == list(range(5))  # the saliency window
    # The logged curvature is the run's own output, frame by frame.
    entry = found["/episode-0000/ncp-ltc/noise0_seed0/curvature"]
    values = [row[0] for b in entry["batches"] for row in b.column("Scalars:scalars").to_pylist()]
    logged = [v for _, v in sorted(zip(entry["frames"], values))]  # chunks may split and reorder rows
    np.testing.assert_allclose(logged, outcomes[0].telemetry["policy_curvature_1pm"], rtol=1e-6)
