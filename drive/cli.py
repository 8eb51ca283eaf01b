"""The `drive` command line: one subcommand per module in `drive/commands/`, found at start-up.

Each command imports its heavy modules only when it runs, so `drive --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from typing import NoReturn

import drive.commands
from common.interrupts import Terminated as Terminated
from common.interrupts import handle_signals


def build_parser() -> argparse.ArgumentParser:
    from drive import __version__

    parser = argparse.ArgumentParser(
        prog="drive",
        description="liquid-drive: record, train, evaluate and deploy liquid-neural-network driving.",
    )
    parser.add_argument("--version", action="version", version=f"liquid-drive {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(drive.commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):  # shared helpers, not commands
            continue
        module = importlib.import_module(f"drive.commands.{module_info.name}")
        module.register(sub)
    return parser


def run() -> NoReturn:
    """The `drive` program (console script, `python -m drive`): `main`, then exit with its status. A
    signal that arrives once the command has finished ends the process quietly (`handle_signals`)."""
    raise SystemExit(main(restore_signals=False))


def main(argv: Sequence[str] | None = None, *, restore_signals: bool = True) -> int:
    """Run one command; returns the exit status (0 done, 2 a user error, 130 / 143 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        with handle_signals(restore=restore_signals):
            return int(args.func(args) or 0)
    except Terminated:
        print("terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    # User errors, an unreachable CARLA server and every OSError on inputs and outputs (a missing or
    # existing file, a read-only or full disk): one clear line, no traceback.
    except (ValueError, OSError) as err:
        if os.environ.get("DRIVE_DEBUG"):
            raise
        print(f"drive {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    run()
