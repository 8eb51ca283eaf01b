"""`drive sim preview|tracks|export-xodr`: look at the embedded simulator, export a track for CARLA."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sim", help="embedded simulator: preview images and video, list tracks")
    inner = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    prev = inner.add_parser("preview", help="PNG grid of conditions, track map, mp4 of a short drive")
    prev.add_argument("--track", default="country", help="track preset or seed-<n> (country)")
    prev.add_argument("--out", default="out/preview", help="output directory (out/preview)")
    prev.add_argument("--seed", type=int, default=0)
    prev.add_argument("--seconds", type=float, default=20.0, help="length of the drive, simulated s")
    prev.set_defaults(func=run_preview)
    tracks = inner.add_parser("tracks", help="list the track presets with length and marking")
    tracks.set_defaults(func=run_tracks)
    xodr = inner.add_parser("export-xodr", help="write a track as OpenDRIVE for CARLA")
    xodr.add_argument("--track", default="country", help="track preset or seed-<n> (country)")
    xodr.add_argument("out", help="output .xodr file")
    xodr.set_defaults(func=run_export_xodr)


def run_preview(args: argparse.Namespace) -> int:
    from drive.closed_loop.preview import preview

    for kind, path in preview(args.track, args.out, seed=args.seed, seconds=args.seconds).items():
        print(f"{kind:6s} {path}")
    return 0


def run_tracks(args: argparse.Namespace) -> int:
    from sim.tracks.track_gen import list_tracks, make_track

    for name in list_tracks():
        track = make_track(name)
        print(
            f"{name:10s} {track.length_m:7.0f} m  max |curvature| {abs(track.curvature_1pm).max():.3f} 1/m  "
            f"marking {track.marking}"
        )
    return 0


def run_export_xodr(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sim.tracks.track_gen import make_track
    from sim.tracks.xodr import track_to_xodr

    track = make_track(args.track)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(track_to_xodr(track))
    print(f"wrote {out}: track {track.name}, {track.length_m:.0f} m, lane {track.lane_width_m:g} m")
    return 0
