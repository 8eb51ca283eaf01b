"""Options shared by commands that take a strict config: `--config FILE` and repeated `--set a.b=v`."""

from __future__ import annotations

import argparse
from typing import Any


def add_config_options(
    parser: argparse.ArgumentParser, default: str | None = None, config_help: str = "YAML config file"
) -> None:
    """`--config FILE` and repeated `--set KEY=VALUE` (collected in `args.overrides`)."""
    parser.add_argument(
        "--config",
        default=default,
        help=config_help + (f" (default: {default})" if default else ""),
    )
    add_set_option(parser)


def add_set_option(parser: argparse.ArgumentParser, example: str = "optim.lr_head=1e-3") -> None:
    """Repeated `--set KEY=VALUE` overrides, collected in `args.overrides`."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config value, e.g. --set {example} (repeatable)",
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
