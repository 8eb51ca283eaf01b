"""`drive study FILE.yaml`: train policies × seeds, evaluate every model on the same episodes, report with
intervals over training seeds."""

from __future__ import annotations

import argparse
import sys

from drive.commands._executor import add_executor_options, executor_overrides
from drive.commands._options import add_set_option


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "study",
        help="policies × training seeds × noise: train, evaluate, report with confidence intervals",
        description="Run a study file (e.g. launch/study_small.yaml): every policy trained with every "
        "seed, every model evaluated closed loop on identical episodes, statistics over training seeds. "
        "Finished jobs are skipped; an interrupted run continues where it stopped.",
    )
    p.add_argument("file", help="study YAML, e.g. launch/study_small.yaml")
    p.add_argument("--out", default=None, help="output directory (overrides the file's `out`)")
    p.add_argument("--workers", type=int, default=None, help="jobs at once (the file's `workers`)")
    add_executor_options(p)
    p.add_argument("--report-only", action="store_true", help="rebuild the report from the finished jobs")
    add_set_option(p, example="train.seeds=[0,1,2,3,4]")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from drive.study.runner import load_study, run_study
    from drive.study.study_report import write_study_report

    overrides = list(args.overrides)
    overrides += [f"out={args.out}"] if args.out else []
    overrides += [f"workers={args.workers}"] if args.workers is not None else []
    config = load_study(args.file, overrides + executor_overrides(args))
    if args.report_only:
        write_study_report(config)
        print(f"report: {config.out}/report.md")
        return 0
    try:
        outcome, _ = run_study(config, progress=not args.quiet)
    except ImportError as err:  # --executor ray without the cluster extra: one line, nothing ran
        print(f"drive study: error: {err}", file=sys.stderr)
        return 2
    print(f"report: {config.out}/report.md")
    for key, error in {**outcome.failures, **outcome.blocked}.items():
        print(f"drive study: job {key} did not finish: {error}", file=sys.stderr)
    return 0 if outcome.ok else 1
