"""`drive train`: train a policy on recorded drives, on one device or, under torchrun, on several.

drive train --config launch/train_default.yaml --data recordings/ --out runs/ncp [--set k=v ...] [--resume]
torchrun --nproc_per_node=4 -m drive train --config launch/train_paper.yaml --data D --out O
"""

from __future__ import annotations

import argparse
import sys

from drive.commands._options import add_config_options


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "train",
        help="train a policy on recorded drives (one GPU, CPU, or many GPUs under torchrun)",
        description="Train a policy on recorded drives. Writes config.yaml, metrics.jsonl, loss_curves.png "
        "and checkpoints/{last,best}.pt into --out.",
    )
    add_config_options(
        parser,
        config_help="training YAML (default: built-in defaults, or the checkpoint's config with --resume)",
    )
    parser.add_argument("--data", default=None, help="directory of recorded episodes (sets data.root)")
    parser.add_argument("--out", required=True, help="run directory (checkpoints, metrics, curves)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoints/last.pt")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from drive.training.run import resolve_config, run_training
    from drive.training.trainer import NonFiniteLossError

    config = resolve_config(
        args.config, args.data, args.overrides, resume_out=args.out if args.resume else None
    )
    try:
        summary = run_training(config, args.out, resume=args.resume)
    except NonFiniteLossError as err:
        print(f"drive train: stopped: {err}", file=sys.stderr)
        return 1
    import os

    if os.environ.get("RANK", "0") == "0":
        print(json.dumps(summary, indent=2, default=str))
    return 0
