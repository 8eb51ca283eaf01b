"""`drive export CKPT --out model.onnx`: a checkpoint to a one-step ONNX graph, after a parity check."""

from __future__ import annotations

import argparse

from drive.commands._options import positive_float, positive_int


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "export",
        help="export a checkpoint to ONNX (one step, state in/out), checked against PyTorch",
        description=(
            "Export a checkpoint to a one-step ONNX graph: inputs image (1xHxWx3 uint8, the camera's size) "
            "and state, outputs curvature (1/m, left positive) and next_state; preprocessing inside; "
            "the contract in metadata_props. Fails, writing nothing, when PyTorch and onnxruntime "
            "differ by more than the tolerance over the parity sequence."
        ),
    )
    parser.add_argument("checkpoint", help="checkpoint file written by `drive train`")
    parser.add_argument(
        "--out", required=True, help="output .onnx path (siblings: .vision/.policy/.fp16/.int8)"
    )
    parser.add_argument("--split", action="store_true", help="also write vision and policy graphs")
    parser.add_argument("--fp16", action="store_true", help="also write a float16 variant (cost reported)")
    parser.add_argument(
        "--int8",
        action="store_true",
        help="also write a static int8 variant, calibrated on --frames (cost reported)",
    )
    parser.add_argument(
        "--calibration-frames",
        type=positive_int,
        default=256,
        metavar="N",
        help="frames the int8 variant is calibrated on, spread over the recording after the parity "
        "frames (default 256)",
    )
    parser.add_argument(
        "--parity-steps", type=positive_int, default=200, help="frames in the parity check (default 200)"
    )
    parser.add_argument(
        "--frames", default=None, metavar="DIR", help="recording to take the parity frames from"
    )
    parser.add_argument(
        "--tolerance",
        type=positive_float,
        default=None,
        help="parity bound on |d curvature|, 1/m (default 1e-4)",
    )
    parser.add_argument(
        "--no-optimize", dest="optimize", action="store_false", help="skip the export-time constant folding"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from drive.export.pipeline import PARITY_TOLERANCE_1PM, export_checkpoint

    result = export_checkpoint(
        args.checkpoint,
        args.out,
        split=args.split,
        fp16=args.fp16,
        int8=args.int8,
        parity_steps=args.parity_steps,
        frames_dir=args.frames,
        calibration_count=args.calibration_frames,
        tolerance_1pm=PARITY_TOLERANCE_1PM if args.tolerance is None else args.tolerance,
        optimize=args.optimize,
    )
    print(result.summary())
    return 0
