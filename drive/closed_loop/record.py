"""`drive record`: expert drives with recovery perturbations, written as recording episodes.

Episodes cycle through the tracks × conditions asked for; episode i uses seed `seed + i` (start position,
scenery, perturbation schedule), so a recording set is reproducible from its config, which is saved as
`record.yaml` beside the episodes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drive.closed_loop.drivers import ExpertDriver
from drive.closed_loop.loop import EpisodeLimits, run_episode
from sim.expert import PerturbationConfig
from sim.registry import SimSpec


@dataclass(frozen=True)
class RecordConfig:
    """A set of recorded expert drives.

    Attributes:
        sim: the simulator backend and its settings (`sim.registry.SimSpec`): `sim: embedded`, or
            `sim: {backend: carla, host: ..., port: ...}` (the carla extra and a running server); its
            track and condition are set per episode.
        tracks: tracks to cycle through (embedded presets or "seed-<n>"; with CARLA also towns such as
            "Town01" or .xodr files, see `CarlaConfig.track`).
        conditions: conditions to cycle through.
        episodes: number of episodes.
        minutes: total driving time over all episodes, simulation minutes.
        seed: seed of episode 0; episode i uses seed + i.
        perturb: add recovery perturbations to the executed command (the label stays the expert's).
        perturbation: pulse ranges of the recovery perturbations.
    """

    sim: SimSpec = field(default_factory=SimSpec)
    tracks: list[str] = field(default_factory=lambda: ["country"])
    conditions: list[str] = field(default_factory=lambda: ["summer"])
    episodes: int = 4
    minutes: float = 10.0
    seed: int = 0
    perturb: bool = True
    perturbation: PerturbationConfig = field(default_factory=PerturbationConfig)

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes must be ≥ 1, got {self.episodes}")
        if not self.minutes > 0:
            raise ValueError(f"minutes must be > 0, got {self.minutes}")
        if self.seed < 0:
            raise ValueError(f"seed must be ≥ 0 (episode i uses seed + i), got {self.seed}")
        if not self.tracks or not self.conditions:
            raise ValueError("tracks and conditions must each name at least one")
        for track in self.tracks:  # fail now, not after hours of driving
            self.episode_sim(track, self.conditions[0])

    def episode_sim(self, track: str, condition: str) -> SimSpec:
        """The simulator (backend and settings) of one episode's track and condition."""
        return self.sim.replace(track=track, condition=condition)

    def episode_plan(self) -> list[tuple[int, str, str, int]]:
        """(index, track, condition, seed) of every episode.

        Every track × condition pair is used once before any repeats, and consecutive episodes change
        both track and condition where possible, so a few episodes already cover the variety asked for.
        """
        order: list[tuple[str, str]] = []
        remaining = list(itertools.product(self.tracks, self.conditions))
        uses = dict.fromkeys([*self.tracks, *self.conditions], 0)
        while remaining:
            last = order[-1] if order else (None, None)
            # Least-used track and condition first; then change both from the last episode.
            pick = min(
                remaining,
                key=lambda c: (uses[c[0]] + uses[c[1]], c[0] == last[0], c[1] == last[1]),
            )
            order.append(pick)
            remaining.remove(pick)
            uses[pick[0]] += 1
            uses[pick[1]] += 1
        return [(i, *order[i % len(order)], self.seed + i) for i in range(self.episodes)]


def record(
    config: RecordConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    redo_incomplete: bool = True,
    overwrite: bool = False,
) -> list[Path]:
    """Record `config.episodes` expert drives into `out_dir/episode-NNNN`; returns the episode paths.

    Episodes already complete in `out_dir` are kept and skipped (an interrupted run resumes). An
    incomplete one (its recorder was killed, interrupted or failed) is deleted and recorded again,
    unless it holds a file no recorder wrote (refused, naming the file) or `redo_incomplete` is False
    (an error naming it).

    `out_dir` records the digest of the config that made it (`common.output_dir`): recording into a
    directory made by another config is refused, unless `overwrite`, which first deletes the episode
    folders there (only if they hold nothing but a recorder's files) and `record.yaml`, keeping any
    other file. A second run into the same directory while one is writing is refused at once.

    Raises:
        OutputMismatchError: `out_dir` holds episodes of another (or an unknown) config.
        OutputBusyError: another run is writing into `out_dir`.
        FileExistsError: an episode to delete holds a file no recorder wrote (named).
    """
    from common.output_dir import OutputLock

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with OutputLock(out, "drive record"):
        _claim_output(config, out, overwrite)
        return _record_episodes(config, out, progress, redo_incomplete)


def _claim_output(config: RecordConfig, out: Path, overwrite: bool) -> None:
    """Make `out` this config's: resume its own, refuse another config's, or clear ours (`overwrite`)."""
    import shutil

    import yaml

    from common.output_dir import OutputMismatchError, config_differences, read_manifest, write_manifest
    from common.strict_config import digest, save_config, to_dict
    from recordings.writer import foreign_files

    current = digest(config)
    manifest = read_manifest(out)
    episodes = sorted(p for p in out.glob("episode-*") if p.is_dir() and p.name[8:].isdigit())
    fresh = manifest is None and not episodes
    ours = manifest is not None and manifest["config_digest"] == current
    if not overwrite and (fresh or ours):
        write_manifest(out, "drive record", current)
        save_config(config, out / "record.yaml")
        return
    if not overwrite:
        saved = out / "record.yaml"
        try:
            keys = (
                config_differences(yaml.safe_load(saved.read_text()), to_dict(config))
                if saved.is_file()
                else []
            )
        except (OSError, yaml.YAMLError):
            keys = []
        made = (
            f"another configuration (it differs in {', '.join(keys[:6])})"
            if keys
            else (
                "another configuration" if manifest is not None else "an unknown configuration (no manifest)"
            )
        )
        raise OutputMismatchError(
            f"{out} holds {len(episodes)} episodes recorded with {made}; record into a new directory, "
            "or pass --overwrite to delete the episodes recorded there (other files are kept)"
        )
    for episode in episodes:  # check all before deleting any: nothing half-removed on refusal
        foreign = foreign_files(episode)
        if foreign:
            raise FileExistsError(
                f"{episode}: holds {foreign[0]!r}, which no recorder wrote; refusing to delete the episode "
                "(move that file out, or record into a new directory)"
            )
    for episode in episodes:
        shutil.rmtree(episode)
    write_manifest(out, "drive record", current)
    save_config(config, out / "record.yaml")


def _record_episodes(config: RecordConfig, out: Path, progress: bool, redo_incomplete: bool) -> list[Path]:
    from recordings.layout import RecordingError
    from recordings.reader import Recording
    from recordings.writer import remove_episode

    dt_s = config.episode_sim(config.tracks[0], config.conditions[0]).config.dt_ctrl_s
    steps_per_episode = int(round(config.minutes * 60.0 / config.episodes / dt_s))
    plan = config.episode_plan()
    bar = _progress_bar(len(plan) * steps_per_episode, progress)
    paths = []
    try:
        for index, track, condition, seed in plan:
            path = out / f"episode-{index:04d}"
            paths.append(path)
            if path.exists():
                try:
                    complete = Recording(path).complete
                except RecordingError:
                    complete = False  # killed before its first chunk was committed
                if complete:
                    bar.update(steps_per_episode)
                    continue
                if not redo_incomplete:
                    raise ValueError(
                        f"{path} is an incomplete episode (interrupted?); delete it to re-record"
                    )
                remove_episode(path)
            episode_sim = config.episode_sim(track, condition)
            driver = ExpertDriver(config.perturbation if config.perturb else None)
            meta = episode_sim.meta(seed, extra={"driver": "expert", "perturb": config.perturb})
            bar.set_postfix_str(f"{track}/{condition} seed {seed}")
            with episode_sim.build() as sim:
                run_episode(
                    sim,
                    driver,
                    seed=seed,
                    limits=EpisodeLimits(max_steps=steps_per_episode - 1),
                    record_to=path,
                    meta=meta,
                    on_step=lambda _: bar.update(1),
                )
            bar.update(1)  # the first frame
    finally:
        bar.close()
    return paths


def _progress_bar(total: int, enabled: bool) -> Any:  # a tqdm bar; tqdm ships no types
    from tqdm import tqdm

    return tqdm(total=total, unit="step", disable=not enabled, dynamic_ncols=True, desc="record")
