"""`drive info [--policy NAME]`: neurons per layer, synapses by kind and polarity, parameters."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("info", help="describe a policy: neurons per layer, synapses, parameters")
    parser.add_argument("--policy", default="ncp-ltc", help="registry name (default: ncp-ltc)")
    parser.add_argument("--wiring-seed", type=int, default=None, help="seed of the NCP wiring")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from policies.describe import describe_policy

    print(describe_policy(args.policy, wiring_seed=args.wiring_seed))
    return 0
