"""The README's import configs are real: every YAML block of "Bring your own drives" loads strictly."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from common.strict_config import load_config
from drive.importers.config import ImportConfig

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_import_config_in_the_readme_loads():
    text = README.read_text()
    section = text[text.index("## Bring your own drives") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 3  # rosbag2, donkeycar, video
    for block in blocks:
        config = load_config(ImportConfig, yaml.safe_load(block))
        assert config.vehicle.wheelbase_m > 0
