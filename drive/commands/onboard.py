"""`drive onboard --model model.onnx`: the closed loop on the exported model, with a deadline per frame;
with `--camera DEVICE|VIDEO_FILE` the real loop instead: camera in, command messages out (`--output`)."""

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
    real = p.add_argument_group("real I/O (drive/onboard_io): a camera instead of the simulator")
    real.add_argument("--camera", default=None, help="camera device (0, /dev/video0) or a video file")
    real.add_argument(
        "--output",
        default="stdout",
        help="command messages: stdout, udp:HOST:PORT or can:CHANNEL (layout: drive/onboard_io/messages.py)",
    )
    real.add_argument(
        "--can-interface", default="socketcan", help="python-can interface for can: (socketcan)"
    )
    real.add_argument("--max-frames", type=positive_int, default=None, help="stop after this many frames")
    real.add_argument(
        "--stall-timeout-ms",
        type=positive_float,
        default=None,
        help="watchdog: a STALL message when nothing was sent this long (default: 3 deadlines)",
    )
    real.add_argument(
        "--no-realtime", action="store_true", help="play a video file as fast as possible (not at its times)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.camera is not None:
        return run_camera(args)
    if args.output != "stdout":
        import sys

        print(
            "drive onboard: error: --output needs --camera (the simulator drive has no outputs)",
            file=sys.stderr,
        )
        return 2
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


def run_camera(args: argparse.Namespace) -> int:
    """The real loop: `--camera` frames through the model, one command message per frame to `--output`."""
    import json
    import sys
    from pathlib import Path

    from drive.onboard.runtime import OnboardPolicy
    from drive.onboard_io.camera import CameraSource
    from drive.onboard_io.outputs import open_output
    from drive.onboard_io.runner import run_onboard

    policy = OnboardPolicy(args.model, intra_op_num_threads=args.threads)
    contract = policy.contract
    try:
        source = CameraSource(
            args.camera, contract.input_height, contract.input_width, realtime=not args.no_realtime
        )
        output = open_output(args.output, args.can_interface)
    except (ValueError, ImportError) as exc:  # a bad --camera/--output, or python-can missing for can:
        print(f"drive onboard: error: {exc}", file=sys.stderr)
        return 2
    deadline_s = contract.control_period_s if args.deadline_ms is None else args.deadline_ms / 1e3
    try:
        result = run_onboard(
            policy,
            source,
            output,
            deadline_s=deadline_s,
            stall_timeout_s=None if args.stall_timeout_ms is None else args.stall_timeout_ms / 1e3,
            max_frames=args.max_frames,
        )
    finally:
        output.close()
    summary = {"frames": result.frames, **{f"messages_{k}": v for k, v in result.messages.items()}}
    summary.update(result.deadline)
    log = sys.stderr if args.output == "stdout" else sys.stdout  # stdout carries the messages then
    for key, value in summary.items():
        print(f"{key:30s} {value:.4g}" if isinstance(value, float) else f"{key:30s} {value}", file=log)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "metrics.json").write_text(json.dumps(summary, indent=2))
    return 0
