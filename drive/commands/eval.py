"""`drive eval`: closed-loop evaluation of policies × noise levels × conditions × seeds, with the report;
with `--open-loop --data DIR`, the policies on recorded drives instead (`drive.eval.open_loop`)."""

from __future__ import annotations

import argparse
import json
import sys

from drive.commands._executor import add_executor_options
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
        "virtual safety driver; write metrics.json, report.md, plots/ and videos/ into --out. With "
        "--open-loop --data DIR: replay the recorded drives under DIR through every policy at every noise "
        "level and seed instead, scored against the recorded label (MAE, RMSE, whiteness, saliency).",
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
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parallel worker processes (1); with --sim carla one per server of sim.servers",
    )
    add_executor_options(p)
    p.add_argument(
        "--saliency",
        action="store_true",
        help="saliency: SSIM, faithfulness and neuron-map sections, video overlay",
    )
    p.add_argument(
        "--saliency-method",
        type=comma_list,
        default=None,
        help="saliency methods, comma-separated, the first drawn in videos: visual_backprop (default), "
        "grad_cam, integrated_gradients; implies --saliency",
    )
    p.add_argument("--videos", type=int, default=None, help="overlay videos per policy (0)")
    p.add_argument("--record", action="store_true", help="also write every episode as a recording")
    p.add_argument(
        "--open-loop",
        action="store_true",
        help="score the policies on recorded drives (--data) against their label: MAE, RMSE, whiteness",
    )
    p.add_argument("--data", default=None, help="with --open-loop: folder of recorded episodes")
    p.add_argument(
        "--max-frames", type=int, default=None, help="with --open-loop: score the first N frames per episode"
    )
    p.add_argument(
        "--perturb",
        action="append",
        default=None,
        metavar="KEY:V1,V2",
        help="deployment faults swept like the noise, e.g. drop:0,0.1,0.2 burst:2 jitter:0.5 "
        "elapsed:true,period latency:0,2 blur:1.5 exposure:0.2 (repeatable: the product of the axes)",
    )
    p.add_argument(
        "--engine",
        default=None,
        help="torch (default) or onnx[:fp32|int8|fp16]: drive the exported graph through the onboard runtime",
    )
    p.add_argument("--out", required=True, help="output folder for the report")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_options(p)
    p.set_defaults(func=run)


_CLOSED_LOOP_ONLY = (
    "conditions",
    "laps",
    "max_steps",
    "sim",
    "track",
    "workers",
    "record",
    "perturb",
    "engine",
)
"""Flags that only a closed loop has (named in the error when given with --open-loop)."""


def run(args: argparse.Namespace) -> int:
    if args.open_loop:
        return run_open_loop(args)
    if args.data is not None or args.max_frames is not None:
        raise ValueError("--data and --max-frames need --open-loop (closed loop drives a simulator)")
    from common.strict_config import load_config
    from drive.closed_loop.deployment import sweep_labels
    from drive.eval.evaluate import evaluate
    from drive.eval.plan import EvalConfig
    from drive.eval.report import ALL, format_stat, noise_key
    from drive.executor.config import ExecutorConfig, require

    try:
        deploy = sweep_labels(args.perturb) if args.perturb else None
    except ValueError as exc:
        print(f"drive eval: error: {exc}", file=sys.stderr)
        return 2
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
        "saliency": True if args.saliency or args.saliency_method else None,
        "saliency_methods": args.saliency_method,
        "record": True if args.record else None,
        "deploy": deploy,
        "engine": args.engine,
    }
    # JSON is valid YAML: paths and lists survive the `key=value` override parser unchanged.
    overrides = [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]
    config = load_config(EvalConfig, args.config, overrides + args.overrides)
    executor = ExecutorConfig(kind=args.executor or "local", address=args.address)
    try:
        require(executor)
    except ImportError as err:  # --executor ray without the cluster extra: one line, nothing ran
        print(f"drive eval: error: {err}", file=sys.stderr)
        return 2
    result = evaluate(config, args.out, progress=not args.quiet, executor=executor)
    print("interventions per episode (mean ± sd over seeds):")
    for label, by_condition in result["aggregate"].items():
        cells = [
            f"σ²={n:g}: {format_stat(by_condition[ALL][noise_key(n)]['interventions'])}" for n in config.noise
        ]
        print(f"  {label:<14} " + "   ".join(cells))
    for label, by_deploy in result.get("deploy", {}).items():
        cells = [f"{d}: {format_stat(stats['interventions_per_km'])}" for d, stats in by_deploy.items()]
        print(f"  {label:<14} interventions/km  " + "   ".join(cells))
    print(f"report: {args.out}/report.md")
    return 0


def run_open_loop(args: argparse.Namespace) -> int:
    """`drive eval --open-loop`: the open-loop evaluation and a one-table summary."""
    from common.strict_config import load_config
    from drive.eval.open_loop import OpenLoopConfig
    from drive.eval.open_loop_eval import evaluate_open_loop
    from drive.eval.report import format_stat, noise_key

    given = [name for name in _CLOSED_LOOP_ONLY if getattr(args, name) not in (None, False)]
    if given:
        raise ValueError(
            f"--{given[0].replace('_', '-')} applies to the closed loop only, not to --open-loop"
        )
    flags = {
        "data": args.data,
        "policies": args.policy,
        "noise": args.noise,
        "seeds": args.seeds,
        "max_frames": args.max_frames,
        "videos": args.videos,
        "saliency": True if args.saliency else None,
    }
    overrides = [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]
    config = load_config(OpenLoopConfig, args.config, overrides + args.overrides)
    result = evaluate_open_loop(config, args.out, progress=not args.quiet)
    print("curvature MAE against the label, 1/m (mean ± sd over noise seeds):")
    for label, by_noise in result["aggregate"].items():
        cells = [
            f"σ²={n:g}: {format_stat(by_noise[noise_key(n)]['mae_1pm'], '{:.4f}')}" for n in config.noise
        ]
        print(f"  {label:<14} " + "   ".join(cells))
    print(f"report: {args.out}/report.md")
    return 0
