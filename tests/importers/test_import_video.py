"""A video encoded with PyAV plus a CSV log, imported: resampling 25 fps to 20 Hz, units, broken logs."""

from __future__ import annotations

import json
import sys

import numpy as np

from drive.cli import main
from tests.importers.helpers import episodes, meta, shown_source_frames, telemetry
from tests.importers.makers import write_csv, write_video

FPS = 25
START_S = 1000.0  # the CSV clock at the video's first frame


def road_wheel_deg(t_s: float) -> float:
    return 12.0 * np.sin(2.0 * (t_s - START_S))


def _log(path, times, **columns):
    header = ["t_ms", *columns]
    rows = [[f"{1000 * t:.1f}", *(col[i] for col in columns.values())] for i, t in enumerate(times)]
    return write_csv(path, header, rows)


def _import(video, out, capsys, *settings: str) -> tuple[int, str, str]:
    base = [
        "video.time_column=t_ms",
        "video.time_unit=ms",
        f"video.video_start_s={START_S}",
        "label.kind=road_wheel_angle",
        "label.unit=deg",
        "vehicle.wheelbase_m=2.0",
    ]
    args = ["recordings", "import", "video", str(video), "--out", str(out), "--no-progress", "--json"]
    for s in (*base, *settings):
        args += ["--set", s]
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_video_and_csv_resampled_to_the_control_rate(tmp_path, capsys):
    video = write_video(tmp_path / "dash.mp4", 30, FPS)  # 1.16 s
    times = START_S + 0.01 * np.arange(125)  # a 100 Hz log
    _log(
        video.with_suffix(".csv"),
        times,
        steering=[road_wheel_deg(t) for t in times],
        speed=[f"{4.0 + 0.0 * t:.2f}" for t in times],
    )
    out = tmp_path / "out"
    code, text, err = _import(video, out, capsys, "video.speed_column=speed", "align.min_episode_frames=4")
    assert code == 0, err
    summary = json.loads(text)
    assert summary["read"]["video frames"] == 30 and summary["grid_steps"] == 24  # 0 .. 1.15 s at 20 Hz
    [episode] = episodes(out)
    tel = telemetry(episode)
    expected = np.tan(np.deg2rad([road_wheel_deg(t) for t in tel["source_time_s"]])) / 2.0
    np.testing.assert_allclose(tel["expert_curvature_1pm"], expected, atol=2e-5)
    np.testing.assert_allclose(tel["speed_mps"], 4.0)
    # each step shows the video frame nearest its time (25 fps frames at k/25 s)
    shown = shown_source_frames(episode)
    np.testing.assert_array_equal(shown, tel["source_frame"])
    assert np.all(np.abs(shown / FPS - (tel["source_time_s"] - START_S)) <= 0.02 + 1e-9)
    assert meta(episode)["extra"]["import"]["details"]["video_start_s"] == START_S


def test_unsorted_csv_is_an_error_naming_the_line(tmp_path, capsys):
    video = write_video(tmp_path / "dash.mp4", 10, FPS)
    times = list(START_S + 0.05 * np.arange(10))
    times[4], times[5] = times[5], times[4]
    _log(video.with_suffix(".csv"), times, steering=[1.0] * 10)
    out = tmp_path / "out"
    code, _, err = _import(video, out, capsys)
    assert code == 2
    assert "line 7: t_ms 1000200.0 is not after the previous row's (1000250.0)" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_rows_without_timestamps_are_dropped_and_reported_never_shifted(tmp_path, capsys):
    video = write_video(tmp_path / "dash.mp4", 40, 20)
    times = START_S + 0.05 * np.arange(40)
    steering = [road_wheel_deg(t) for t in times]
    _log(video.with_suffix(".csv"), times, steering=steering)
    lines = (video.with_suffix(".csv")).read_text().splitlines()
    for i in range(16, 24):  # 8 rows (0.4 s) lose their timestamp: their labels must not move to other frames
        lines[1 + i] = "," + lines[1 + i].split(",", 1)[1]
    (video.with_suffix(".csv")).write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    code, text, err = _import(video, out, capsys, "align.min_episode_frames=4")
    assert code == 0, err
    summary = json.loads(text)
    assert summary["dropped_samples"] == {"CSV rows without a t_ms": 8}
    assert summary["dropped_steps"] == {"no steering label within align.label_tolerance_s": 8}
    for episode in episodes(out):
        tel = telemetry(episode)
        expected = np.tan(np.deg2rad([road_wheel_deg(t) for t in tel["source_time_s"]])) / 2.0
        np.testing.assert_allclose(tel["expert_curvature_1pm"], expected, atol=2e-5)


def test_missing_label_kind_and_missing_csv_column(tmp_path, capsys):
    video = write_video(tmp_path / "dash.mp4", 5, FPS)
    _log(video.with_suffix(".csv"), START_S + 0.05 * np.arange(5), steer=[0.0] * 5)
    code, _, err = _import(video, tmp_path / "o", capsys)
    assert code == 2 and "no column 'steering' (columns: t_ms, steer)" in err
    args = [
        "recordings",
        "import",
        "video",
        str(video),
        "--out",
        str(tmp_path / "o"),
        "--set",
        "video.steering_column=steer",
        "--set",
        "video.time_column=t_ms",
    ]
    assert main(args) == 2
    assert "label.kind is needed for this source" in capsys.readouterr().err


def test_without_the_import_extra_one_line_says_how_to_install(tmp_path, capsys, monkeypatch):
    video = write_video(tmp_path / "dash.mp4", 5, FPS)
    _log(video.with_suffix(".csv"), START_S + 0.05 * np.arange(5), steering=[0.0] * 5)
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    code, _, err = _import(video, tmp_path / "o", capsys)
    assert code == 2
    assert err.strip() == (
        "drive recordings import: error: the video importer needs the 'av' package: "
        "pip install -e '.[import]'"
    )


def test_an_occupied_out_fails_before_reading(tmp_path, capsys):
    (tmp_path / "o" / "episode-0000").mkdir(parents=True)
    code, _, err = _import(tmp_path / "missing.mp4", tmp_path / "o", capsys)
    assert code == 2 and "already holds episodes; choose an empty --out" in err
