"""`drive record`: record expert drives (with recovery perturbations) on a simulator."""

from __future__ import annotations

import argparse

from drive.commands._options import (
    add_config_options,
    cli_overrides,
    comma_list,
    nonnegative_int,
    positive_float,
    positive_int,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("record", help="record expert drives with recovery perturbations")
    p.add_argument("--out", required=True, help="output directory (episodes go in episode-NNNN/)")
    p.add_argument(
        "--sim", default=None, help="simulator backend: embedded (default), carla, or any registered"
    )
    p.add_argument("--track", type=comma_list, default=None, help="track(s), comma-separated (country)")
    p.add_argument("--town", dest="track", type=comma_list, help="CARLA town(s), e.g. Town01 (= --track)")
    p.add_argument(
        "--condition", type=comma_list, default=None, help="condition(s), comma-separated (summer)"
    )
    p.add_argument("--minutes", type=positive_float, default=None, help="total simulated minutes (10)")
    p.add_argument("--episodes", type=positive_int, default=None, help="number of episodes (4)")
    p.add_argument("--seed", type=nonnegative_int, default=None, help="seed of the first episode (0)")
    p.add_argument("--no-perturb", action="store_true", help="record the clean expert, no recovery pulses")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="first delete the episodes already in --out (only folders holding nothing but a recording)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from common.strict_config import load_config
    from drive.closed_loop.record import RecordConfig, record

    overrides = cli_overrides(
        {
            "sim.backend": args.sim,
            "tracks": args.track,
            "conditions": args.condition,
            "minutes": args.minutes,
            "episodes": args.episodes,
            "seed": args.seed,
            "perturb": False if args.no_perturb else None,
        }
    )
    config = load_config(RecordConfig, args.config, overrides + args.overrides)
    paths = record(config, args.out, progress=not args.quiet, overwrite=args.overwrite)
    print(f"recorded {len(paths)} episodes in {args.out}")
    return 0
