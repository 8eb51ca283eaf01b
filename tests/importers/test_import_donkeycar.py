"""Donkeycar v2 tubs (the on-disk layout of donkeycar.parts.tub_v2) imported: sign, units, gaps."""

from __future__ import annotations

import json

import numpy as np

from drive.cli import main
from tests.importers.helpers import episodes, meta, shown_source_frames, telemetry
from tests.importers.makers import write_tub

T0_MS = 1_764_900_000_000
CAR = ["--set", "vehicle.wheelbase_m=0.25", "--set", "vehicle.max_steer_rad=0.4", "--no-progress"]


def _import(tub, out, capsys, *extra: str) -> str:
    code = main(["recordings", "import", "donkeycar", str(tub), "--out", str(out), *CAR, *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_angle_maps_to_curvature_right_positive_to_left_positive(tmp_path, capsys):
    angles = np.linspace(-1.0, 1.0, 40)  # full left ... full right
    tub = write_tub(tmp_path / "tub", [T0_MS + 50 * i for i in range(40)], angles)
    out = tmp_path / "out"
    _import(tub, out, capsys)
    [episode] = episodes(out)
    tel = telemetry(episode)
    np.testing.assert_allclose(tel["expert_curvature_1pm"], np.tan(-angles * 0.4) / 0.25, rtol=1e-6)
    assert tel["expert_curvature_1pm"][0] > 0  # Donkeycar's -1 (full left) is a left turn: positive
    assert abs(tel["expert_curvature_1pm"][0] - np.tan(0.4) / 0.25) < 1e-5  # 1.6912 1/m at full lock
    np.testing.assert_array_equal(shown_source_frames(episode), np.arange(40))
    assert np.isnan(tel["speed_mps"]).all()  # a tub has no speed: not invented
    conversion = meta(episode)["extra"]["import"]["conversion"]
    assert conversion["kind"] == "normalized" and conversion["left_positive"] is False
    assert conversion["max_steer_rad"] == 0.4


def test_a_gap_in_the_tub_is_reported_and_splits_the_drive(tmp_path, capsys):
    times = [T0_MS + 50 * i for i in range(44)]
    angles = 0.5 * np.sin(np.arange(44) / 5.0)
    tub = write_tub(tmp_path / "tub", times, angles, skip=range(20, 26), max_len=16)  # 3 catalogs
    out = tmp_path / "out"
    text = _import(tub, out, capsys, "--set", "align.min_episode_frames=8")
    assert "dropped steps: 6 no camera frame within align.frame_tolerance_s" in text
    first, second = episodes(out)
    a, b = telemetry(first), telemetry(second)
    np.testing.assert_array_equal(shown_source_frames(first), np.arange(20))
    # the source frame index counts usable records: after the 6 missing ones, index 20 is record 26
    np.testing.assert_array_equal(shown_source_frames(second), np.arange(26, 44))
    np.testing.assert_allclose(b["expert_curvature_1pm"], np.tan(-angles[26:] * 0.4) / 0.25, rtol=1e-5)
    np.testing.assert_allclose(a["expert_curvature_1pm"], np.tan(-angles[:20] * 0.4) / 0.25, rtol=1e-5)
    summary = meta(first)["extra"]["import"]["summary"]  # the first episode knows about the second
    assert summary["episodes"] == [
        {"name": "episode-0000", "frames": 20},
        {"name": "episode-0001", "frames": 18},
    ]
    assert summary["dropped_steps"] == {"no camera frame within align.frame_tolerance_s": 6}
    assert meta(second)["extra"]["import"]["details"]["index_gaps"] == 1


def test_deleted_and_broken_records_are_counted_not_used(tmp_path, capsys):
    angles = np.full(30, 0.25)
    tub = write_tub(tmp_path / "tub", [T0_MS + 50 * i for i in range(30)], angles, deleted=[29])
    with open(tub / "catalog_0.catalog", "a", newline="") as f:
        f.write("{not json\r\n")
    (tub / "images" / "28_cam_image_array_.jpg").unlink()
    out = tmp_path / "out"
    text = _import(tub, out, capsys, "--json")
    summary = json.loads(text)
    assert summary["dropped_samples"] == {
        "records that are not valid JSON": 1,
        "records marked deleted in the manifest": 1,
        "records whose cam/image_array image file is missing": 1,
    }
    assert summary["read"]["records"] == 31 and summary["frames_written"] == 28


def test_not_a_tub_and_missing_car_parameters_are_clear_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert (
        main(["recordings", "import", "donkeycar", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
        == 2
    )
    assert "not a Donkeycar v2 tub (no manifest.json)" in capsys.readouterr().err
    tub = write_tub(tmp_path / "tub", [T0_MS + 50 * i for i in range(20)], np.zeros(20))
    assert main(["recordings", "import", "donkeycar", str(tub), "--out", str(tmp_path / "o")]) == 2
    assert "vehicle.wheelbase_m is needed to turn a normalized label" in capsys.readouterr().err
