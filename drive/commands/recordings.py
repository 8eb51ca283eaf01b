"""`drive recordings info|validate DIR`: what a set of recorded drives holds; check every byte of it.

`drive recordings import FORMAT SRC --out DIR`: a ROS 2 bag, Donkeycar tub or video + CSV log becomes
ordinary episodes (see `drive.importers`).
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("recordings", help="inspect and validate recorded drives")
    inner = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = inner.add_parser("info", help="episodes, frames, duration, km, conditions, label statistics")
    info.add_argument("root", help="a directory of episodes (searched recursively)")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=run_info)
    val = inner.add_parser("validate", help="read every chunk of every episode; exit 1 on the first damage")
    val.add_argument("root", help="an episode or a directory of episodes")
    val.set_defaults(func=run_validate)
    _register_import(inner)


def _register_import(inner: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from drive.commands._options import add_config_options

    imp = inner.add_parser(
        "import",
        help="turn a ROS 2 bag (MCAP), Donkeycar tub or video + CSV log into episodes",
        description="Import a foreign drive: align frames and steering to the control rate, convert the "
        "steering to curvature (1/m, left positive) with the bicycle model, crop/resize to the camera "
        "contract, and write validated episodes. Prints what was read, written and dropped.",
    )
    imp.add_argument("format", choices=["rosbag2", "donkeycar", "video"], help="the source's format")
    imp.add_argument("src", help="bag (.mcap file or bag directory), tub directory, or video file")
    imp.add_argument("--out", help="output directory for episode-NNNN/ (must hold no episodes yet)")
    imp.add_argument("--list-topics", action="store_true", help="rosbag2: list topics, types and counts")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")
    imp.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_options(imp, config_help="import YAML (vehicle, label, align, camera, <format> sections)")
    imp.set_defaults(func=run_import)


def run_info(args: argparse.Namespace) -> int:
    import json

    from recordings.catalog import summarize

    summary = summarize(args.root)
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary.format())
    return 0 if not summary.broken else 1


def run_validate(args: argparse.Namespace) -> int:
    from recordings.catalog import find_episodes
    from recordings.layout import RecordingError
    from recordings.validate import validate

    episodes = find_episodes(args.root)
    if not episodes:
        raise ValueError(f"no episodes under {args.root}")
    bad = 0
    for path in episodes:
        try:
            report = validate(path)
            state = "complete" if report.complete else "INCOMPLETE (writer did not close it)"
            print(f"ok   {path}: {report.num_frames} frames, {report.num_chunks} chunks, {state}")
        except RecordingError as err:
            bad += 1
            print(f"FAIL {err}")
    print(f"{len(episodes) - bad}/{len(episodes)} episodes valid")
    return 1 if bad else 0


def run_import(args: argparse.Namespace) -> int:
    try:
        return _import(args)
    except ModuleNotFoundError as err:  # the optional `import` extra is missing: one line, how to install
        print(f"drive recordings import: error: {err}", file=sys.stderr)
        return 2


def _import(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from common.strict_config import load_config
    from drive.importers import import_source
    from drive.importers.config import ImportConfig

    if args.list_topics:
        if args.format != "rosbag2":
            raise ValueError("--list-topics is for rosbag2 sources")
        from drive.importers.rosbag2 import list_topics

        for topic, kind, count in list_topics(Path(args.src)):
            print(f"{topic}\t{kind}\t{count}")
        return 0
    if not args.out:
        raise ValueError("--out DIR is required (where the episodes go)")
    config = load_config(ImportConfig, args.config, args.overrides)
    summary = import_source(args.format, args.src, args.out, config, progress=not args.no_progress)
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary.format_text())
    return 0
