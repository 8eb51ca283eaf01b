"""`drive recordings info|validate DIR`: what a set of recorded drives holds; check every byte of it."""

from __future__ import annotations

import argparse


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
