"""Fixtures of the importer tests: small real drives in each foreign format."""

from __future__ import annotations

import pytest

pytest.importorskip("mcap_ros2", reason="the importers need the import extra: pip install -e '.[import]'")
pytest.importorskip("av", reason="the importers need the import extra: pip install -e '.[import]'")
