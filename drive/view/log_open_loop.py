"""Log an open-loop evaluation (`drive eval --open-loop`) into a Rerun recording stream.

Each recorded episode the evaluation replayed is logged as a drive (`drive.view.log_drive`, under the
episode's folder name E), and every run on it adds its per-frame outputs (`runs/<run_id>.npz`) under
`E/<policy>/noise<σ²>_seed<s>/` (`RUN_ENTITIES`), on the same `frame` and `time` timelines, so the
policies' curvature lines up with the recorded label and camera frame by frame.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from drive.view.log_drive import JPEG_QUALITY, log_drive
from recordings.reader import Recording

RUN_ENTITIES = {"curvature": "curvature", "neurons": "neurons", "saliency": "saliency"}
"""Entity paths of one run, relative to `E/<policy>/noise<σ²>_seed<s>`; the saliency is blended over the
recorded frame (a noisy run's policy saw that frame with noise)."""


def run_prefix(episode_prefix: str, row: dict[str, Any]) -> str:
    """The entity prefix of one run of metrics.json's `runs`."""
    return f"{episode_prefix}/{row['label']}/noise{row['noise_variance']:g}_seed{row['seed']}"


def open_loop_episodes(target: Path, content: dict[str, Any]) -> list[tuple[str, Recording]]:
    """(entity prefix, recording) of every episode the evaluation replayed, in order.

    Raises:
        ValueError: an episode or a run's outputs file is gone (named).
    """
    episodes = list(dict.fromkeys(str(r["episode"]) for r in content["runs"]))
    for row in content["runs"]:
        if not row.get("outputs") or not (target / row["outputs"]).is_file():
            raise ValueError(f"{target}: run {row['id']} has no per-frame outputs file (runs/*.npz)")
    return [(Path(e).name, Recording(e)) for e in episodes]


def log_open_loop(
    rr: Any,
    stream: Any,
    target: Path,
    content: dict[str, Any],
    on_frame: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """Log the episodes and runs of the open-loop evaluation in `target` (its metrics.json `content`).

    Returns:
        (drives logged, frames logged: recorded frames plus every run's frames).
    """
    from drive.eval.videos import saliency_overlay

    frames = 0
    episodes = open_loop_episodes(target, content)
    for prefix, recording in episodes:
        frames += log_drive(rr, stream, recording, prefix, on_frame=on_frame)
        for row in (r for r in content["runs"] if Path(r["episode"]).name == prefix):
            base = run_prefix(prefix, row)
            stream.log(
                f"{base}/{RUN_ENTITIES['curvature']}", rr.SeriesLines(names=[row["label"]]), static=True
            )
            with np.load(target / row["outputs"]) as data:
                outputs = {k: data[k] for k in data.files}
            saliency = outputs.get("saliency")
            for t in range(len(outputs["policy_curvature_1pm"])):
                stream.set_time("frame", sequence=t)
                # The replay's time already counts from the episode's first frame.
                stream.set_time("time", duration=float(outputs["timestamp_s"][t]))
                value = float(outputs["policy_curvature_1pm"][t])
                stream.log(f"{base}/{RUN_ENTITIES['curvature']}", rr.Scalars(value))
                if "hidden" in outputs:
                    stream.log(
                        f"{base}/{RUN_ENTITIES['neurons']}",
                        rr.Scalars(outputs["hidden"][t].astype(np.float64)),
                    )
                if saliency is not None and t < len(saliency):
                    image = recording.frames(t, t + 1)[0]
                    overlay = rr.Image(saliency_overlay(image, saliency[t])).compress(
                        jpeg_quality=JPEG_QUALITY
                    )
                    stream.log(f"{base}/{RUN_ENTITIES['saliency']}", overlay)
                frames += 1
                if on_frame is not None:
                    on_frame()
    return len(episodes), frames
