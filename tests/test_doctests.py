"""The `>>>` examples in the packages' docstrings run and print what they say (one test per module).

Modules are found by their text, so a new example is tested without being listed here. Examples that need
a file the tests cannot make (an exported model) are marked `# doctest: +SKIP` where they stand.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "drive", "perception", "policies", "sim", "recordings")
CARLA_ROOM = "sim.carla"
"""Modules here import the carla client package (the carla extra): skipped without it."""


def _modules_with_examples() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>>" not in path.read_text(encoding="utf-8"):
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            names.append(".".join(parts))
    return names


MODULES = _modules_with_examples()


def test_examples_are_found() -> None:
    # The finder itself: the recordings reader's example is known to exist.
    assert "recordings.reader" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    if name == CARLA_ROOM or name.startswith(CARLA_ROOM + "."):
        pytest.importorskip("carla", reason="the carla extra is not installed")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, raise_on_error=False)
    assert result.failed == 0, (
        f"{result.failed} of {result.attempted} examples in {name} failed (output above)"
    )
