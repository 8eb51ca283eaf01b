"""Per-step latency of the onboard runtime vs PyTorch eager vs the conv head alone, at 1 thread.

Exports the policy (fresh from the registry, or a checkpoint) to a temporary directory, then times one
control step, frame by frame, in three ways in the same run, interleaved in rounds so that drift of the
machine's speed hits all three alike:

- onboard: `OnboardPolicy.act(frame)` — the deployed path (onnxruntime, image + state -> curvature),
  for the fp32 graph and its static int8 variant (calibrated on `--frames`, or on synthetic frames).
- torch:   `DrivingPolicy.step` in PyTorch eager (no_grad, 1 thread), state fed back the same way.
- perception alone: the policy's perception (the conv head for the NCP policies) exported by itself
  and run in onnxruntime: the floor the full step cannot beat.

Targets (issue 6): onboard p50 <= 1.3x perception alone and <= 0.5x PyTorch eager; each is printed
for fp32 and for int8 (whose accuracy cost vs PyTorch fp32 over the parity frames is printed too).
`--int8-float-first-conv` adds int8 with the first convolution kept float (the default before issue 19
quantised it in SpaceToDepth form: the two rows give its latency and accuracy cost side by side).

    python bench/onboard.py                       # ncp-ltc, 400 steps
    python bench/onboard.py --policy ncp-cfc --steps 200
    python bench/onboard.py --checkpoint runs/x/checkpoints/best.pt --frames runs/x/record/episode-0003
    python bench/onboard.py --checkpoint best.pt --frames EPISODE --int8-float-first-conv --steps 200
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from drive.export.graphs import to_onnx  # noqa: E402
from drive.export.parity import ParityResult, synthetic_frames  # noqa: E402
from drive.export.pipeline import export_policy  # noqa: E402
from drive.onboard.runtime import OnboardPolicy, open_session  # noqa: E402
from policies.driving_policy import DrivingPolicy  # noqa: E402

OPT_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
TARGET_VS_PERCEPTION = 1.3
TARGET_VS_TORCH = 0.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", default="ncp-ltc", help="registry name (default ncp-ltc)")
    parser.add_argument("--checkpoint", default=None, help="time this checkpoint instead of a fresh policy")
    parser.add_argument("--steps", type=int, default=400, help="timed steps per path (default 400)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed steps per path first (default 30)")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds the steps are split into")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads, both runtimes (default 1)")
    parser.add_argument(
        "--no-optimize", dest="optimize", action="store_false", help="skip the export-time graph optimisation"
    )
    parser.add_argument("--fp16", action="store_true", help="also time the fp16 export")
    parser.add_argument(
        "--frames", default=None, metavar="DIR", help="recording for the parity and int8 calibration frames"
    )
    parser.add_argument(
        "--int8-float-first-conv",
        action="store_true",
        help="also time int8 with the first convolution kept float",
    )
    parser.add_argument("--opt-level", choices=sorted(OPT_LEVELS), default="all", help="onnxruntime level")
    return parser.parse_args(argv)


def load(args: argparse.Namespace):
    if args.checkpoint:
        from policies.checkpoint import load_policy

        return load_policy(args.checkpoint)[0].eval()
    from policies.registry import build_policy

    return build_policy(args.policy).eval()


def percentiles_ms(samples_ns: list[int]) -> tuple[float, float, float]:
    ms = np.asarray(samples_ns, np.float64) / 1e6
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.mean())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    policy = load(args)
    level = OPT_LEVELS[args.opt_level]
    frames = synthetic_frames(64, policy.config.camera_height, policy.config.camera_width)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "model.onnx"
        exported = export_policy(
            policy,
            model_path,
            parity_steps=200,
            frames_dir=args.frames,
            optimize=args.optimize,
            fp16=args.fp16,
            int8=True,
        )
        onboard = OnboardPolicy(model_path, intra_op_num_threads=args.threads, optimization_level=level)
        variants = {
            f"onboard {name} (onnxruntime)": OnboardPolicy(
                model_path.with_suffix(f".{name}.onnx"),
                intra_op_num_threads=args.threads,
                optimization_level=level,
            )
            for name in exported.variants
        }
        costs = dict(exported.variants)
        if args.int8_float_first_conv:
            path, costs["int8-conv1"] = int8_float_first_conv(policy, model_path, args.frames)
            variants["onboard int8-conv1 (onnxruntime)"] = OnboardPolicy(
                path, intra_op_num_threads=args.threads, optimization_level=level
            )
        # The perception alone, exported the same way, on the preprocessed (network-size) image.
        net_image = torch.from_numpy(frames[:1].copy())
        with torch.no_grad():
            net_image = policy.preprocess(net_image)
        perception_path = Path(tmp) / "perception.onnx"
        onnx.save(
            to_onnx(policy.perception, (net_image,), ["image"], ["features"], args.optimize), perception_path
        )
        perception = open_session(perception_path, args.threads, optimization_level=level)
        net_frames = [policy.preprocess(torch.from_numpy(f[None])).numpy() for f in frames]
        full_graph = onnx.load(model_path)

        state = {"torch": policy.initial_state(1)}

        def torch_step(i: int) -> None:
            with torch.no_grad():
                _, state["torch"] = policy.step(torch.from_numpy(frames[i][None]), state["torch"])

        paths = {
            "onboard (onnxruntime)": lambda i: onboard.act(frames[i]),
            "pytorch eager": torch_step,
            "perception alone (onnxruntime)": lambda i: perception.run(None, {"image": net_frames[i]}),
            **{name: (lambda i, v=variant: v.act(frames[i])) for name, variant in variants.items()},
        }
        samples, per_round = time_paths(paths, len(frames), args.warmup, args.steps, args.rounds)
    print_summary(args, policy, full_graph, samples, per_round, costs)
    return 0


def int8_float_first_conv(
    policy: DrivingPolicy, model_path: Path, frames_dir: str | None
) -> tuple[Path, ParityResult]:
    """The int8 variant with the first convolution kept float, beside `model_path`, and its accuracy
    cost against PyTorch fp32 on the export's own parity frames (calibrated on the same frames as the
    export's int8 variant), so the two int8 rows differ only in the first convolution."""
    from drive.export.parity import (
        calibration_frames,
        compare_rollouts,
        full_step,
        onnx_rollout,
        parity_frames,
        torch_rollout,
    )
    from drive.export.pipeline import _atomic_save
    from drive.export.variants import to_int8_static

    height, width = policy.config.camera_height, policy.config.camera_width
    frames, source = parity_frames(policy, 200, frames_dir)
    calibration, _ = calibration_frames(frames_dir, 256, height, width, 200)
    variant = to_int8_static(onnx.load(model_path), calibration, first_conv=False)
    n = max(policy.state_size, 1)
    cost = compare_rollouts(
        torch_rollout(policy, frames), onnx_rollout(full_step(variant), frames, n), source, policy.state_size
    )
    path = model_path.with_suffix(".int8-float-conv1.onnx")
    _atomic_save(variant, path)  # with its digest, as the runtime checks
    return path, cost


def time_paths(
    paths: dict[str, Callable[[int], object]], n_frames: int, warmup: int, steps: int, rounds: int
) -> tuple[dict[str, list[int]], int]:
    """Wall time of each path's call on frame i, ns: `rounds` interleaved rounds (so drifts in clock or
    load hit every path alike) of `steps // rounds` calls each, after `warmup` calls per path.

    Returns:
        (samples per path, calls per round).
    """
    samples: dict[str, list[int]] = {name: [] for name in paths}
    for fn in paths.values():
        for i in range(warmup):
            fn(i % n_frames)
    per_round = max(1, steps // rounds)
    for _ in range(rounds):
        for name, fn in paths.items():
            for i in range(per_round):
                start = time.perf_counter_ns()
                fn(i % n_frames)
                samples[name].append(time.perf_counter_ns() - start)
    return samples, per_round


def print_summary(
    args: argparse.Namespace,
    policy: DrivingPolicy,
    full_graph: onnx.ModelProto,
    samples: dict[str, list[int]],
    per_round: int,
    variants: dict[str, ParityResult],
) -> None:
    """The latency table, the targets met or not, and each reduced precision's accuracy cost."""
    ops = collections.Counter(node.op_type for node in full_graph.graph.node)
    print(
        f"policy {policy.config.name}: camera {policy.config.camera_height}x{policy.config.camera_width}, "
        f"{args.threads} thread(s), onnxruntime {ort.__version__} (opt level {args.opt_level}), "
        f"torch {torch.__version__}; {per_round * args.rounds} steps per path"
    )
    print(f"exported graph: {len(full_graph.graph.node)} nodes: {dict(ops.most_common(8))} ...")
    print(
        f"{'path':34s} {'p50 ms':>8s} {'p99 ms':>8s} {'mean ms':>8s} {'p50 / fp32':>10s} {'p50 / eager':>11s}"
    )
    stats = {name: percentiles_ms(s) for name, s in samples.items()}
    perception_p50, torch_p50 = stats["perception alone (onnxruntime)"][0], stats["pytorch eager"][0]
    fp32_p50 = stats["onboard (onnxruntime)"][0]
    for name, (p50, p99, mean) in stats.items():
        print(f"{name:34s} {p50:8.3f} {p99:8.3f} {mean:8.3f} {p50 / fp32_p50:10.2f} {p50 / torch_p50:11.2f}")
    ok = lambda good: "met" if good else "NOT met"  # noqa: E731
    rows = [("fp32", "onboard (onnxruntime)"), ("int8", "onboard int8 (onnxruntime)")]
    if "onboard int8-conv1 (onnxruntime)" in stats:
        rows.append(("int8-conv1", "onboard int8-conv1 (onnxruntime)"))
    for precision, name in rows:
        vs_perception = stats[name][0] / perception_p50
        vs_torch = stats[name][0] / torch_p50
        print(
            f"{precision}: onboard p50 / perception alone (fp32) p50 = {vs_perception:.2f} "
            f"(target <= {TARGET_VS_PERCEPTION}: {ok(vs_perception <= TARGET_VS_PERCEPTION)}); "
            f"onboard p50 / pytorch eager p50 = {vs_torch:.2f} "
            f"(target <= {TARGET_VS_TORCH}: {ok(vs_torch <= TARGET_VS_TORCH)})"
        )
    for precision, cost in variants.items():
        relative_pct = 100 * cost.rms_diff_1pm / cost.curvature_rms_1pm
        print(
            f"{precision} accuracy cost vs PyTorch fp32 ({cost.source}, {cost.steps} steps): "
            f"max |dcurvature| {cost.max_abs_diff_1pm:.3g} 1/m, rms {relative_pct:.2g}% of the curvature rms"
        )


if __name__ == "__main__":
    raise SystemExit(main())
