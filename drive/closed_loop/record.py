"""`drive record`: expert drives with recovery perturbations, written as recording episodes.

Episodes cycle through the tracks × conditions asked for; episode i uses seed `seed + i` (start position,
scenery, perturbation schedule), so a recording set is reproducible from its config, which is saved as
`record.yaml` beside the episodes.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from drive.closed_loop.drivers import ExpertActor
from drive.closed_loop.loop import EpisodeLimits, run_episode
from sim.carla.config import CarlaConfig
from sim.embedded.simulator import EmbeddedSimConfig
from sim.expert import PerturbationConfig
from sim.registry import make_simulator, sim_meta


@dataclass(frozen=True)
class RecordConfig:
    """A set of recorded expert drives.

    Attributes:
        sim: simulator backend ("embedded"; "carla" with the carla extra and a running server).
        tracks: tracks to cycle through (embedded presets or "seed-<n>"; with CARLA also towns such as
            "Town01" or .xodr files, see `CarlaConfig.track`).
        conditions: conditions to cycle through.
        episodes: number of episodes.
        minutes: total driving time over all episodes, simulation minutes.
        seed: seed of episode 0; episode i uses seed + i.
        perturb: add recovery perturbations to the executed command (the label stays the expert's).
        perturbation: pulse ranges of the recovery perturbations.
        embedded: embedded-simulator settings (its track and condition are set per episode).
        carla: CARLA settings (server, vehicle, camera; track and condition are set per episode).
    """

    sim: str = "embedded"
    tracks: list[str] = field(default_factory=lambda: ["country"])
    conditions: list[str] = field(default_factory=lambda: ["summer"])
    episodes: int = 4
    minutes: float = 10.0
    seed: int = 0
    perturb: bool = True
    perturbation: PerturbationConfig = field(default_factory=PerturbationConfig)
    embedded: EmbeddedSimConfig = field(default_factory=EmbeddedSimConfig)
    carla: CarlaConfig = field(default_factory=CarlaConfig)

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes must be ≥ 1, got {self.episodes}")
        if not self.minutes > 0:
            raise ValueError(f"minutes must be > 0, got {self.minutes}")
        if not self.tracks or not self.conditions:
            raise ValueError("tracks and conditions must each name at least one")
        if self.sim not in ("embedded", "carla"):
            raise ValueError(f"sim must be 'embedded' or 'carla', got {self.sim!r}")
        for track in self.tracks:  # fail now, not after hours of driving
            self.sim_config(track, self.conditions[0])

    def sim_config(self, track: str, condition: str) -> EmbeddedSimConfig | CarlaConfig:
        """The active backend's config (`embedded` or `carla`) for one episode's track and condition."""
        base = self.carla if self.sim == "carla" else self.embedded
        return dataclasses.replace(base, track=track, condition=condition)

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
    config: RecordConfig, out_dir: str | Path, *, progress: bool = True, redo_incomplete: bool = False
) -> list[Path]:
    """Record `config.episodes` expert drives into `out_dir/episode-NNNN`; returns the episode paths.

    Episodes already complete in `out_dir` are kept and skipped (an interrupted run resumes). An
    incomplete one (its recorder was killed) is an error naming it, unless `redo_incomplete`, which
    deletes and records it again (the launcher does, since it wrote that episode itself).
    """
    import shutil

    from common.strict_config import save_config
    from recordings.layout import RecordingError
    from recordings.reader import Recording

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "record.yaml")
    dt_s = config.sim_config(config.tracks[0], config.conditions[0]).dt_ctrl_s
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
                shutil.rmtree(path)
            sim_config = config.sim_config(track, condition)
            driver = ExpertActor(config.perturbation if config.perturb else None)
            extra = {"driver": "expert", "perturb": config.perturb}
            meta = sim_meta(config.sim, sim_config, seed, extra=extra)
            bar.set_postfix_str(f"{track}/{condition} seed {seed}")
            with make_simulator(config.sim, sim_config) as sim:
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


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="step", disable=not enabled, dynamic_ncols=True, desc="record")
