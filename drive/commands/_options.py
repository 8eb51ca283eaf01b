"""Options shared by commands that take a strict config: `--config FILE` and repeated `--set a.b=v`."""

from __future__ import annotations

import argparse
from typing import Any


def add_config_options(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument(
        "--config", default=default, help="YAML config file" + (f" (default: {default})" if default else "")
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.lr=3e-4 (repeatable)",
    )


def comma_list(text: str) -> list[str]:
    """`a,b,c` -> ["a", "b", "c"] (for argparse `type=`)."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def cli_overrides(mapping: dict[str, Any]) -> list[str]:
    """Turn explicitly given CLI flags into `key=value` overrides (None means not given)."""
    out = []
    for key, value in mapping.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = "[" + ",".join(str(v) for v in value) + "]"
        out.append(f"{key}={value}")
    return out
