"""`--executor local|ray` and `--address` for the commands that run a plan of jobs (`drive study`,
`drive eval`)."""

from __future__ import annotations

import argparse

from drive.executor.config import EXECUTOR_KINDS


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """`--executor KIND` and `--address ADDR` (collected in `args.executor`, `args.address`)."""
    parser.add_argument(
        "--executor",
        choices=EXECUTOR_KINDS,
        default=None,
        help="who runs the jobs: local (process pool on this machine, the default) or ray (a Ray cluster; "
        "pip install -e '.[cluster]')",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="with --executor ray: the cluster (auto: the one this machine joined with `ray start`; "
        "ray://HOST:10001); none starts a private Ray on this machine",
    )


def executor_overrides(args: argparse.Namespace, prefix: str = "executor.") -> list[str]:
    """`--set`-style overrides for the flags given."""
    out = [f"{prefix}kind={args.executor}"] if args.executor else []
    return out + ([f"{prefix}address={args.address}"] if args.address else [])
