"""`drive view`: open a recorded drive or an evaluation folder in Rerun, or write it as an .rrd file."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "view",
        help="show a drive or an evaluation in Rerun (camera, saliency, curvature, neurons, map, events)",
        description="Log a recorded episode (or every drive recorded in an evaluation folder) into Rerun on "
        "one timeline and open the viewer, or write an .rrd file with --save (open it with `rerun FILE`). "
        "Needs the view extra: pip install -e '.[view]'.",
    )
    p.add_argument(
        "target", metavar="EPISODE_OR_EVAL_DIR", help="an episode directory or an evaluation folder"
    )
    p.add_argument(
        "--save", metavar="FILE.rrd", default=None, help="write the recording here instead of viewing"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from drive.view.viewer import view

    try:
        result = view(args.target, args.save, progress=not args.quiet)
    except ImportError as err:  # the view extra is missing: its install hint, one line
        print(f"drive view: error: {err}", file=sys.stderr)
        return 2
    where = f"written to {result['save']}" if result["save"] else "sent to the viewer"
    print(f"{result['drives']} drive(s), {result['frames']} frames {where}")
    return 0
