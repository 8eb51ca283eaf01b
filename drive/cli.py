"""The `drive` command line: one subcommand per job; each imports its heavy modules only when run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


def _cmd_info(args: argparse.Namespace) -> int:
    from drive.info import describe_policy

    print(describe_policy(args.policy, wiring_seed=args.wiring_seed))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from drive import __version__

    parser = argparse.ArgumentParser(
        prog="drive",
        description="liquid-drive: train, evaluate and deploy liquid neural network driving policies.",
    )
    parser.add_argument("--version", action="version", version=f"liquid-drive {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser("info", help="describe a policy: neurons per layer, synapses, parameters")
    info.add_argument("--policy", default="ncp-ltc", help="registry name (default: ncp-ltc)")
    info.add_argument("--wiring-seed", type=int, default=None, help="seed of the NCP wiring")
    info.set_defaults(func=_cmd_info)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# Modules that add subcommands as they land: each has `register(subparsers)`.
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as err:  # user errors: one clear line, no traceback
        print(f"drive {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
