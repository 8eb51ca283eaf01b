"""Fixtures for the recordings tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.recordings.episodes import write_episode


@pytest.fixture
def episode_path(tmp_path: Path) -> Path:
    """A closed episode of 21 frames in chunks of 8 (the last chunk partial)."""
    return write_episode(tmp_path / "episode-0000", 21)
