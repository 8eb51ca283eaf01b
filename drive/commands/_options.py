"""Options shared by commands that take a strict config: `--config FILE` and repeated `--set a.b=v`."""

from __future__ import annotations

import argparse
import math
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


def _number(kind: type, text: str, low: float, inclusive: bool) -> int | float:
    """`text` as a finite `kind` above `low` (or at it, when `inclusive`), for argparse `type=`."""
    try:
        value: float = int(text) if kind is int else float(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value) or value < low or (value == low and not inclusive):
        bound = f"≥ {low:g}" if inclusive else f"> {low:g}"
        raise argparse.ArgumentTypeError(f"must be a finite number {bound}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer ≥ 1 (argparse names the option in its error)."""
    return int(_number(int, text, 1, True))


def nonnegative_int(text: str) -> int:
    """An integer ≥ 0 (seeds, counts that may be zero)."""
    return int(_number(int, text, 0, True))


def positive_float(text: str) -> float:
    """A finite number > 0 (durations, rates, tolerances)."""
    return float(_number(float, text, 0.0, False))


def nonnegative_float(text: str) -> float:
    """A finite number ≥ 0 (noise variances)."""
    return float(_number(float, text, 0.0, True))
