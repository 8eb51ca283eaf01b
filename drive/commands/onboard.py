"""`drive onboard --model model.onnx`: the closed loop on the exported model, with a deadline per frame."""

from __future__ import annotations

import argparse

from drive.commands._options import (
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "onboard", help="drive the embedded simulator with an exported ONNX model (onnxruntime)"
    )
    p.add_argument("--model", required=True, help="model.onnx from `drive export`")
    p.add_argument("--sim", choices=["embedded"], default="embedded", help="simulator backend (embedded)")
    p.add_argument("--track", default="forest", help="track (forest)")
    p.add_argument("--condition", default="summer", help="condition (summer)")
    p.add_argument("--laps", type=positive_int, default=1, help="laps to drive (1)")
    p.add_argument(
        "--max-minutes", type=positive_float, default=10.0, help="stop after this much simulated time (10)"
    )
    p.add_argument("--seed", type=nonnegative_int, default=0, help="episode seed (0)")
    p.add_argument(
        "--noise", type=nonnegative_float, default=0.0, help="Gaussian image-noise variance on [0,1] (0)"
    )
    p.add_argument(
        "--deadline-ms",
        type=positive_float,
        default=None,
        help="per-frame budget (default: the control period)",
    )
    p.add_argument("--threads", type=positive_int, default=1, help="onnxruntime intra-op threads (1)")
    p.add_argument("--out", default=None, help="write metrics.json (and the drive as a recording) here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from drive.closed_loop.onboard_drive import drive_onboard
    from sim.perturbations import gaussian_spec

    result = drive_onboard(
        args.model,
        track=args.track,
        condition=args.condition,
        laps=args.laps,
        seed=args.seed,
        perturbations=gaussian_spec(args.noise),
        deadline_s=None if args.deadline_ms is None else args.deadline_ms / 1e3,
        threads=args.threads,
        max_time_s=args.max_minutes * 60.0,
        record_to=Path(args.out) / "drive" if args.out else None,
    )
    summary = {**result["metrics"], **result["deadline"]}
    for key, value in summary.items():
        print(f"{key:30s} {value:.4g}" if isinstance(value, float) else f"{key:30s} {value}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "metrics.json").write_text(json.dumps(result, indent=2, default=str))
        print(f"metrics written to {Path(args.out) / 'metrics.json'}")
    return 0
