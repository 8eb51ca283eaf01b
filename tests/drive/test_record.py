"""`drive record`, `drive recordings info|validate` and `drive sim preview` through the CLI."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

from drive.cli import main
from recordings.reader import Recording


def _record(out, *extra):
    return main(
        [
            "record",
            "--out",
            str(out),
            "--minutes",
            "0.1",
            "--episodes",
            "2",
            "--track",
            "oval,forest",
            "--condition",
            "summer,night",
            "--quiet",
            *extra,
        ]
    )


def _digest(path) -> str:
    rec = Recording(path)
    h = hashlib.sha256(rec.frames().tobytes())
    for name, values in sorted(rec.telemetry.items()):
        h.update(name.encode() + np.asarray(values).tobytes())
    return h.hexdigest()


def test_record_writes_valid_labelled_episodes(tmp_path, capsys):
    assert _record(tmp_path / "rec") == 0
    episodes = sorted((tmp_path / "rec").glob("episode-*"))
    assert [p.name for p in episodes] == ["episode-0000", "episode-0001"]
    first, second = Recording(episodes[0]), Recording(episodes[1])
    assert first.num_frames == 60 and first.complete
    assert (first.meta["track"], first.meta["condition"]) == ("oval", "summer")
    assert (second.meta["track"], second.meta["condition"]) == ("forest", "night")
    tel = first.telemetry
    # Recovery pulses: the executed command departs from the label at times, the label is the expert's.
    assert np.all(np.isfinite(tel["expert_curvature_1pm"]))
    assert np.all(np.diff(tel["timestamp_s"]) > 0)
    assert (tmp_path / "rec" / "record.yaml").is_file()
    capsys.readouterr()
    assert main(["recordings", "validate", str(tmp_path / "rec")]) == 0
    assert "2/2 episodes valid" in capsys.readouterr().out
    assert main(["recordings", "info", "--json", str(tmp_path / "rec")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["episodes"] == 2 and info["frames"] == 120 and info["tracks"] == {"oval": 1, "forest": 1}


def test_same_seed_same_recording_other_seed_differs(tmp_path):
    _record(tmp_path / "a")
    _record(tmp_path / "b")
    _record(tmp_path / "c", "--seed", "7")
    a, b, c = (_digest(tmp_path / d / "episode-0000") for d in "abc")
    assert a == b and a != c


def test_perturbations_change_the_executed_command_not_the_label(tmp_path):
    main(["record", "--out", str(tmp_path / "p"), "--minutes", "0.5", "--episodes", "1", "--quiet"])
    tel = Recording(tmp_path / "p" / "episode-0000").telemetry
    gap = np.abs(tel["curvature_1pm"] - tel["expert_curvature_1pm"])
    assert gap.max() > 0.01  # pulses of 0.02-0.06 1/m happened
    main(
        [
            "record",
            "--out",
            str(tmp_path / "q"),
            "--minutes",
            "0.5",
            "--episodes",
            "1",
            "--quiet",
            "--no-perturb",
        ]
    )
    clean = Recording(tmp_path / "q" / "episode-0000").telemetry
    np.testing.assert_allclose(clean["curvature_1pm"], clean["expert_curvature_1pm"], atol=1e-7)


def test_rerun_skips_complete_episodes_and_redoes_incomplete_ones(tmp_path, capsys):
    _record(tmp_path / "rec")
    before = _digest(tmp_path / "rec" / "episode-0001")
    mtime = (tmp_path / "rec" / "episode-0001" / "meta.json").stat().st_mtime_ns
    assert _record(tmp_path / "rec") == 0
    assert (tmp_path / "rec" / "episode-0001" / "meta.json").stat().st_mtime_ns == mtime
    assert _digest(tmp_path / "rec" / "episode-0001") == before
    meta = tmp_path / "rec" / "episode-0001" / "meta.json"
    data = json.loads(meta.read_text())
    data["complete"] = False
    meta.write_text(json.dumps(data))
    assert _record(tmp_path / "rec") == 0  # an incomplete episode the recorder wrote is redone
    assert Recording(tmp_path / "rec" / "episode-0001").complete
    assert _digest(tmp_path / "rec" / "episode-0001") == before


def test_bad_arguments_are_named(tmp_path, capsys):
    assert main(["record", "--out", str(tmp_path / "x"), "--track", "moon", "--quiet"]) == 2
    assert "moon" in capsys.readouterr().err
    assert (
        main(["record", "--out", str(tmp_path / "x"), "--set", "embeded.target_speed_mps=3", "--quiet"]) == 2
    )
    assert "embeded" in capsys.readouterr().err


@pytest.mark.parametrize("track", ["forest"])
def test_preview_writes_grid_map_and_video(tmp_path, track):
    assert main(["sim", "preview", "--track", track, "--out", str(tmp_path), "--seconds", "2"]) == 0
    grid = cv2.imread(str(tmp_path / "frames_grid.png"))
    assert grid.shape == (5 * 78 * 3, 3 * 200 * 3, 3)  # 5 conditions × 3 places, upscaled 3x
    assert cv2.imread(str(tmp_path / "track_map.png")) is not None
    video = cv2.VideoCapture(str(tmp_path / "drive.mp4"))
    count = 0
    while video.read()[0]:
        count += 1
    assert count == 41  # 2 s at 20 Hz, first frame included
