"""`drive eval`: closed-loop evaluation of policies × noise levels × conditions × seeds, with the report."""

from __future__ import annotations

import argparse
import json

from drive.commands._options import add_config_options, comma_list


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "eval",
        help="closed-loop evaluation: interventions, noise robustness, saliency, report",
        description="Drive every policy on a held-out track at every noise level, condition and seed with a "
        "virtual safety driver; write metrics.json, report.md, plots/ and videos/ into --out.",
    )
    p.add_argument(
        "--policy",
        action="append",
        default=None,
        metavar="CKPT",
        help="checkpoint to evaluate (repeatable); 'expert' for the built-in reference driver",
    )
    p.add_argument(
        "--noise", type=_floats, default=None, help="noise variances σ², comma-separated (0,0.1,0.2,0.3)"
    )
    p.add_argument("--conditions", type=comma_list, default=None, help="conditions, comma-separated (summer)")
    p.add_argument("--seeds", type=_ints, default=None, help="episode seeds, comma-separated (0,1,2)")
    p.add_argument("--laps", type=int, default=None, help="laps per episode (2)")
    p.add_argument("--max-steps", type=int, default=None, help="at most this many control steps per episode")
    p.add_argument(
        "--sim", default=None, help="simulator backend: embedded (default), carla, or any registered"
    )
    p.add_argument("--track", default=None, help="held-out track (forest); with CARLA also a town (Town01)")
    p.add_argument("--workers", type=int, default=None, help="parallel worker processes (1)")
    p.add_argument(
        "--saliency", action="store_true", help="VisualBackProp saliency: SSIM table, video overlay"
    )
    p.add_argument("--videos", type=int, default=None, help="overlay videos per policy (0)")
    p.add_argument("--record", action="store_true", help="also write every episode as a recording")
    p.add_argument(
        "--engine",
        default=None,
        help="torch (default) or onnx[:fp32|int8|fp16]: drive the exported graph through the onboard runtime",
    )
    p.add_argument("--out", required=True, help="output folder for the report")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from common.strict_config import load_config
    from drive.eval.evaluate import evaluate
    from drive.eval.plan import EvalConfig
    from drive.eval.report import ALL, format_stat, noise_key

    flags = {
        "sim.backend": args.sim,
        "policies": args.policy,
        "noise": args.noise,
        "conditions": args.conditions,
        "seeds": args.seeds,
        "laps": args.laps,
        "max_steps": args.max_steps,
        "track": args.track,
        "workers": args.workers,
        "videos": args.videos,
        "saliency": True if args.saliency else None,
        "record": True if args.record else None,
        "engine": args.engine,
    }
    # JSON is valid YAML: paths and lists survive the `key=value` override parser unchanged.
    overrides = [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]
    config = load_config(EvalConfig, args.config, overrides + args.overrides)
    result = evaluate(config, args.out, progress=not args.quiet)
    print("interventions per episode (mean ± sd over seeds):")
    for label, by_condition in result["aggregate"].items():
        cells = [
            f"σ²={n:g}: {format_stat(by_condition[ALL][noise_key(n)]['interventions'])}" for n in config.noise
        ]
        print(f"  {label:<14} " + "   ".join(cells))
    print(f"report: {args.out}/report.md")
    return 0
