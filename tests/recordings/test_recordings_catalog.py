"""find_episodes, summarize and validate over a tree of episodes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from recordings import Recording, find_episodes, summarize, validate
from tests.recordings.episodes import label_of, write_episode


@pytest.fixture
def tree(tmp_path):
    """Three episodes at different depths, one foreign directory, one broken episode."""
    root = tmp_path / "runs"
    write_episode(root / "day1" / "episode-0000", 21, episode=0, condition="clear")
    write_episode(root / "day1" / "episode-0001", 10, episode=1, condition="rain")
    write_episode(root / "day2" / "nested" / "episode-0000", 5, episode=2, condition="clear")
    (root / "day2" / "notes").mkdir()
    (root / "day2" / "notes" / "readme.txt").write_text("not an episode")
    broken = write_episode(root / "day3" / "episode-0000", 4, episode=3)
    (broken / "telemetry" / "part-00000.parquet").write_bytes(b"garbage")
    return root


def test_find_episodes_lists_every_episode_sorted_and_nothing_else(tree):
    found = find_episodes(tree)
    assert [p.relative_to(tree).as_posix() for p in found] == [
        "day1/episode-0000",
        "day1/episode-0001",
        "day2/nested/episode-0000",
        "day3/episode-0000",
    ]
    assert find_episodes(found[0]) == [found[0]]  # an episode directory is its own tree
    with pytest.raises(FileNotFoundError, match="no such directory"):
        find_episodes(tree / "missing")


def test_summarize_totals_match_the_episodes(tree):
    summary = summarize(tree)
    assert summary.episodes == 3 and summary.incomplete == 0
    assert summary.frames == 36
    assert summary.duration_s == pytest.approx(36 * 0.05)
    assert summary.conditions == {"clear": 2, "rain": 1} and summary.tracks == {"oval": 3}
    # synthetic rows advance progress by speed * dt each frame: (T - 1) steps per episode
    assert summary.distance_km == pytest.approx((20 + 9 + 4) * 4.47 * 0.05 / 1000, rel=1e-5)
    labels = np.concatenate([[label_of(i, e) for i in range(n)] for e, n in [(0, 21), (1, 10), (2, 5)]])
    assert summary.label_mean == pytest.approx(labels.mean(), rel=1e-6)
    assert summary.label_std == pytest.approx(labels.std(), rel=1e-5)
    assert (summary.label_min, summary.label_max) == (labels.min(), pytest.approx(labels.max()))
    assert len(summary.broken) == 1 and "part-00000.parquet" in summary.broken[0][1]
    text = summary.format()
    assert "episodes     3 (0 incomplete, 1 broken)" in text and "clear (2), rain (1)" in text
    assert json.loads(json.dumps(summary.to_dict()))["frames"] == 36


def test_summarize_of_an_empty_tree_has_no_label_statistics(tmp_path):
    summary = summarize(tmp_path)
    assert summary.episodes == 0 and summary.frames == 0 and math.isnan(summary.label_mean)


def test_validate_reports_what_it_read(tree):
    report = validate(tree / "day1" / "episode-0000")
    assert report.num_frames == 21 and report.num_chunks == 3 and report.complete
    assert report.streams == ("frames",)
    assert report.decoded_bytes == 21 * 6 * 8 * 3
    assert report.duration_s == pytest.approx(21 * 0.05)
    assert Recording(report.path).num_frames == 21
