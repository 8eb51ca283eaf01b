"""`drive view`: a recorded drive or an evaluation folder in Rerun (the viewer opened, or an .rrd written).

- An episode directory (meta.json): that drive, at the root of the entity tree.
- A closed-loop evaluation folder (eval.yaml + metrics.json): every drive recorded under it (`drive eval
  --record`), each under its episode id, all on one `time` axis from each drive's start, so the policies'
  drives of one seed can be compared frame by frame; interventions carry their cause from metrics.json.
- An open-loop evaluation folder (`drive eval --open-loop`): each replayed episode, with every run's
  curvature, neurons and saliency beside the recorded label (`drive.view.log_open_loop`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

APPLICATION_ID = "liquid-drive"


def drives_to_view(target: str | Path) -> list[tuple[str, Path]]:
    """(entity prefix, episode directory) of every drive `target` holds.

    Raises:
        ValueError: `target` is neither an episode nor a folder with recorded episodes (named).
    """
    from recordings.catalog import find_episodes
    from recordings.layout import META_FILE

    root = Path(target)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such episode or evaluation folder")
    if (root / META_FILE).is_file():
        return [("", root)]
    episodes = find_episodes(root)
    if not episodes:
        hint = (
            " (run drive eval with --record to keep the drives)" if (root / "metrics.json").is_file() else ""
        )
        raise ValueError(f"{root}: no recorded drive in it{hint}")
    return [(_prefix(root, path), path) for path in episodes]


def _prefix(root: Path, episode: Path) -> str:
    """The entity prefix of `episode` under `root`: its relative path, `/`-separated, without `episodes/`."""
    parts = [p for p in episode.relative_to(root).parts if p != "episodes"]
    return "/".join(parts) or episode.name


def read_metrics(target: Path) -> dict[str, Any] | None:
    """An evaluation folder's metrics.json, None when `target` has none."""
    metrics = target / "metrics.json"
    if not metrics.is_file():
        return None
    try:
        content: dict[str, Any] = json.loads(metrics.read_text())
    except ValueError as err:
        raise ValueError(f"{metrics}: not JSON ({err})") from None
    return content


def intervention_causes(content: dict[str, Any] | None) -> dict[str, dict[int, str]]:
    """Episode id -> {frame: cause} from a closed-loop evaluation's metrics.json content."""
    causes: dict[str, dict[int, str]] = {}
    for row in (content or {}).get("episodes") or []:
        causes[str(row["id"])] = {int(i["frame"]): str(i["cause"]) for i in row.get("interventions") or []}
    return causes


def view(target: str | Path, save: str | Path | None = None, *, progress: bool = True) -> dict[str, Any]:
    """Log every drive of `target` into one Rerun recording; write it to `save` (.rrd) or open the viewer.

    Returns:
        {"drives": number logged, "frames": frames logged, "save": the .rrd path or None}.

    Raises:
        ImportError: rerun-sdk is missing (the message says how to install it).
    """
    from tqdm import tqdm

    from drive.view.log_drive import log_drive
    from drive.view.rerun_import import import_rerun
    from recordings.reader import Recording

    rr = import_rerun()
    if save is not None and Path(save).suffix != ".rrd":
        raise ValueError(f"--save: expected a .rrd file name, got {save}")
    root = Path(target)
    content = read_metrics(root) if root.is_dir() else None
    open_loop = content is not None and content.get("mode") == "open_loop"
    if open_loop:
        assert content is not None
        from drive.view.log_open_loop import open_loop_episodes

        recordings = open_loop_episodes(root, content)  # every drive opens before logging
        limit = (content.get("config") or {}).get("max_frames") or 1 << 62
        runs = [min(limit, Recording(r["episode"]).num_frames) for r in content["runs"]]
        total = sum(rec.num_frames for _, rec in recordings) + sum(runs)
    else:
        recordings = [(prefix, Recording(path)) for prefix, path in drives_to_view(root)]
        total = sum(rec.num_frames for _, rec in recordings)
    stream = rr.RecordingStream(APPLICATION_ID, recording_id=str(root.resolve()))
    if save is not None:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        stream.save(str(save))
    else:
        stream.spawn()
    with tqdm(total=total, unit="frame", desc="view", disable=not progress) as bar:
        if open_loop:
            assert content is not None
            from drive.view.log_open_loop import log_open_loop

            drives, frames = log_open_loop(rr, stream, root, content, on_frame=lambda: bar.update(1))
        else:
            causes = intervention_causes(content)
            drives, frames = len(recordings), 0
            for prefix, rec in recordings:
                episode_causes = causes.get(Path(rec.path).name, {})
                frames += log_drive(rr, stream, rec, prefix, episode_causes, on_frame=lambda: bar.update(1))
    stream.flush()
    if save is not None:
        stream.disconnect()
    return {"drives": drives, "frames": frames, "save": str(save) if save is not None else None}
