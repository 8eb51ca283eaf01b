"""`drive launch FILE.yaml`: run a named pipeline (record → train → eval → export → onboard → report)."""

from __future__ import annotations

import argparse

from drive.commands._options import add_set_option, comma_list


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("launch", help="run a launch file: record, train, evaluate, export, onboard, report")
    p.add_argument(
        "file", help="launch YAML, e.g. launch/demo.yaml (its relative paths: to the file's folder)"
    )
    p.add_argument("--force", action="store_true", help="redo stages even when their outputs exist")
    p.add_argument("--stages", type=comma_list, default=None, help="run only these stages, e.g. eval,report")
    p.add_argument(
        "--out", default=None, help="output directory, relative to the working directory (overrides `out`)"
    )
    add_set_option(p, example="record.minutes=5")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from drive.launch.runner import Launch, load_launch

    # The file's paths are relative to its folder; --out, typed here, to the working directory.
    config = load_launch(args.file, args.overrides, out=args.out)
    Launch(config, force=args.force, progress=not args.quiet).run(args.stages)
    print(f"report: {config.out}/report.md")
    return 0
