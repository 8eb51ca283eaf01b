"""What an evaluation runs: its config (`EvalConfig`) and the matrix of episodes (`EpisodeSpec`).

The matrix is policies × conditions × noise levels × seeds on one track the policies did not train on
(`forest` by default, the unmarked narrow one), on the embedded simulator or on CARLA. Every (condition,
seed) pair gives the same start, route and noise stream to every policy and noise level: the simulator
and the noise wrapper draw everything from the episode seed, so models are compared on identical drives.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from perception.saliency_methods import check_methods
from sim.perturbations import check_specs, gaussian_spec
from sim.registry import SimSpec
from sim.safety_driver import SafetyDriverConfig

if TYPE_CHECKING:
    from sim.tracks.track import Track

EXPERT = "expert"
"""`--policy expert`: the simulator's privileged expert as a reference driver (sees no camera)."""

UNKNOWN_TRACK_TIME_CAP_S = 600.0
"""Episode time cap with `laps` on a track whose length is not known before a server builds it (a CARLA
town or .xodr file), s; only the progress bar's estimate uses it: an episode knows its route's length."""


@dataclass(frozen=True)
class EvalConfig:
    """A closed-loop evaluation (saved as `eval.yaml` beside the report).

    Attributes:
        policies: checkpoint paths, or "expert" for the built-in reference driver.
        noise: Gaussian image-noise variances σ² on the [0, 1] image (the paper: 0, 0.1, 0.2, 0.3).
        noise_space: where the noise goes (`sim.perturbations.GaussianNoise`): "pixel" (the [0, 1]
            camera image, the paper) or "standardized" (the policy's standardised input).
        sim: the simulator backend and its settings (`sim.registry.SimSpec`): `sim: embedded`, or
            `sim: {backend: carla, port: 2000, ...}` (the carla extra and a running server); its track
            is `track`, its condition is set per episode.
        conditions: conditions (summer, winter, rain, night, dusk).
        seeds: episode seeds (start position, scenery, noise stream); mean ± sd are over these.
        laps: laps per episode; None: no lap limit (then `max_steps` or `max_time_s` ends it).
        max_steps: control steps per episode at most (quick runs); None: no step limit.
        max_time_s: simulation time per episode at most, s; None: twice the nominal time of `laps`
            plus 60 s (a cap for a car that stops making progress).
        track: the held-out track (a preset or "seed-<n>"; with CARLA also a town such as "Town01" or an
            .xodr file, see `CarlaConfig.track`).
        workers: parallel worker processes (spawned, torch single-threaded); 1 runs in this process; with
            CARLA at most the number of servers in `sim.servers` (each worker holds one server: one client
            ticks a server in synchronous mode).
        saliency: compute saliency (needed for the SSIM, faithfulness and neuron-map sections and the
            video overlay).
        saliency_methods: which methods (`perception.saliency_methods.SALIENCY_METHODS`: visual_backprop,
            grad_cam, integrated_gradients); the first one is drawn in the videos and kept in recordings,
            every one gets SSIM, faithfulness and rank-correlation figures over the saliency window.
        saliency_frames: leading frames whose saliency is kept and compared (the paper: 200).
        faithfulness_frames: frames of the saliency window (evenly spaced) that get the deletion /
            insertion test (perception.faithfulness), per method (at most the window's frames); 0: no test.
        videos: overlay videos per policy (not the expert: it has no saliency or neurons): its first
            `videos` episodes in (seed, condition, noise) order, i.e. with `videos` = number of noise
            levels, one per noise level of the first seed and condition. Noisy videos are large (mp4v
            cannot compress noise: ~1.5 MB per second).
        video_s: length of each video, simulation seconds from the episode start.
        record: write every episode as a recording (frames, telemetry, hidden state, saliency).
        perturbations: further camera perturbations by name (`sim.perturbations.wrap`), outside the
            Gaussian noise, e.g. `[{"name": "blur", "sigma_px": 1.5}]`.
        safety: the safety driver's triggers and response.
        deploy: deployment settings swept like the noise levels (`drive.closed_loop.deployment`), e.g.
            `["none", "drop=0.2,burst=2,jitter=0.5", "drop=0.2,burst=2,jitter=0.5,elapsed=period"]`; each
            episode runs under one of them (frame drops, timing jitter, latency, camera blur/exposure).
        engine: what runs the policies (`drive.eval.engine`): "torch" (PyTorch eager), or "onnx",
            "onnx:int8", "onnx:fp16": each checkpoint exported (cached by its digest) and driven by the
            onboard runtime, the graph the car runs. Not with noise_space "standardized" (the graph
            takes raw frames); Grad-CAM stays a torch-engine feature.
    """

    sim: SimSpec = field(default_factory=SimSpec)
    policies: list[str] = field(default_factory=list)
    noise: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3])
    noise_space: Literal["pixel", "standardized"] = "pixel"
    conditions: list[str] = field(default_factory=lambda: ["summer"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    laps: int | None = 2
    max_steps: int | None = None
    max_time_s: float | None = None
    track: str = "forest"
    workers: int = 1
    saliency: bool = False
    saliency_methods: list[str] = field(default_factory=lambda: ["visual_backprop"])
    saliency_frames: int = 200
    faithfulness_frames: int = 10
    videos: int = 0
    video_s: float = 20.0
    record: bool = False
    perturbations: list[dict[str, Any]] = field(default_factory=list)
    safety: SafetyDriverConfig = field(default_factory=SafetyDriverConfig)
    deploy: list[str] = field(default_factory=lambda: ["none"])
    engine: str = "torch"

    def __post_init__(self) -> None:
        if not self.policies:
            raise ValueError("policies: give at least one checkpoint (or 'expert')")
        from drive.closed_loop.deployment import DeploymentConfig

        # Canonical labels: `drop=0.20` and `drop=0.2` are one setting; a bad key fails here, named.
        try:
            object.__setattr__(self, "deploy", [DeploymentConfig.parse(d).label for d in self.deploy])
        except ValueError as exc:
            raise ValueError(f"deploy: {exc}") from None
        check_sweep_axes(self, ("noise", "conditions", "seeds", "deploy"))
        if self.laps is None and self.max_steps is None and self.max_time_s is None:
            raise ValueError("set laps, max_steps or max_time_s: an episode needs an end")
        if self.laps is not None and self.laps < 1:
            raise ValueError(f"laps must be ≥ 1 or None, got {self.laps}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be ≥ 1 or None, got {self.max_steps}")
        if self.max_time_s is not None and not self.max_time_s > 0:
            raise ValueError(f"max_time_s must be > 0 or None, got {self.max_time_s}")
        if self.workers < 1:
            raise ValueError(f"workers must be ≥ 1, got {self.workers}")
        if self.sim.backend == "carla":
            servers = len(self.sim.config.servers) or 1
            if self.workers > servers:
                raise ValueError(
                    f"workers {self.workers} with sim 'carla' needs as many CARLA servers (one synchronous "
                    f"client per server), got {servers}: list them in sim.servers: [host:port, ...]"
                )
        check_specs(self.perturbations)  # an unknown name or parameter fails here, named
        from drive.eval.engine import parse_engine

        engine = parse_engine(self.engine)  # names the accepted engines
        object.__setattr__(self, "engine", engine.name)  # canonical: "onnx" -> "onnx:fp32"
        if engine.kind == "onnx" and self.noise_space == "standardized":
            raise ValueError(
                f"engine {engine.name!r}: noise_space 'standardized' adds noise inside the network input, "
                "which the exported graph (raw frames in) cannot take; use engine 'torch' or noise_space "
                "'pixel'"
            )
        if self.saliency_frames < 1:
            raise ValueError(f"saliency_frames must be ≥ 1, got {self.saliency_frames}")
        if not self.saliency_methods:
            raise ValueError("saliency_methods: give at least one method")
        check_methods(self.saliency_methods)  # named here, not in a worker
        if self.faithfulness_frames < 0:
            raise ValueError(f"faithfulness_frames must be ≥ 0, got {self.faithfulness_frames}")
        if self.videos < 0 or not self.video_s > 0:
            raise ValueError(f"videos must be ≥ 0 and video_s > 0, got {self.videos}, {self.video_s}")
        # Fail now, not in a worker: every condition and the track must build a simulator config.
        for condition in self.conditions:
            self.episode_sim(condition)
        # The saved config says what ran: the evaluation track and the first condition.
        object.__setattr__(self, "sim", self.episode_sim(self.conditions[0]))

    def episode_sim(self, condition: str) -> SimSpec:
        """The simulator (backend and settings) on `track` in `condition`."""
        return self.sim.replace(track=self.track, condition=condition)

    def episode_perturbations(self, spec: EpisodeSpec) -> list[dict[str, Any]]:
        """Every perturbation of episode `spec`, innermost first: its noise level as a Gaussian noise
        spec (none at σ² = 0), then `perturbations` (the one place noise levels become wrappers)."""
        return [*gaussian_spec(spec.noise_variance, self.noise_space), *self.perturbations]

    @property
    def control_period_s(self) -> float:
        return float(self.sim.config.dt_ctrl_s)

    @property
    def target_speed_mps(self) -> float:
        """The simulator's speed set-point, m/s."""
        return float(self.sim.config.target_speed_mps)

    @property
    def video_frames(self) -> int:
        """Frames in each video."""
        return max(1, int(round(self.video_s / self.control_period_s)))

    def episode_time_cap_s(self, track_length_m: float | None) -> float | None:
        """The simulation-time limit of one episode, s (see `max_time_s`).

        Args:
            track_length_m: length of the driven route, m; None: not known yet (see `eval_track`), then
                `UNKNOWN_TRACK_TIME_CAP_S` stands in for the lap-based cap.
        """
        if self.max_time_s is not None:
            return float(self.max_time_s)
        if self.laps is None:
            return None
        if track_length_m is None:
            return UNKNOWN_TRACK_TIME_CAP_S
        return 2.0 * self.laps * track_length_m / max(self.target_speed_mps, 0.5) + 60.0


def eval_track(config: EvalConfig) -> Track | None:
    """The evaluation track's geometry when it is an embedded track (the embedded simulator drives it;
    CARLA builds the same road from its OpenDRIVE export), None for a CARLA town or an .xodr file (its
    route is known only once a server has built it): the report then has no track map.
    """
    from sim.tracks.track_gen import make_track, validate_track_name

    try:
        validate_track_name(config.track)
    except ValueError:  # not an embedded track name: a backend's own map (a CARLA town, an .xodr file)
        return None
    return make_track(config.track)


@dataclass(frozen=True)
class EpisodeSpec:
    """One cell of the matrix.

    Attributes:
        index: position in the plan (results are ordered by it).
        policy: checkpoint path or "expert".
        label: the policy's name in tables (registry name, made unique with the file stem).
        condition: simulator condition.
        noise_variance: σ² of the Gaussian image noise.
        seed: episode seed.
        video: write an overlay video of this episode.
        deploy: the deployment setting's label (`drive.closed_loop.deployment`), "none" without faults.
    """

    index: int
    policy: str
    label: str
    condition: str
    noise_variance: float
    seed: int
    video: bool = False
    deploy: str = "none"

    @property
    def episode_id(self) -> str:
        """A file-system-safe name, e.g. `ncp-ltc_summer_noise0.1_seed2` (plus `_drop=0.2` and so on
        under a deployment setting)."""
        raw = f"{self.label}_{self.condition}_noise{self.noise_variance:g}_seed{self.seed}"
        if self.deploy != "none":
            raw += "_" + self.deploy.replace(",", "_")
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw)


def policy_labels(policies: list[str], names: list[str]) -> list[str]:
    """Table labels: the registry name, or `name@stem` where two policies share a name.

    Args:
        policies: checkpoint paths (or "expert"), in order.
        names: the registry name of each (policy config name, or "expert").
    """
    from pathlib import Path

    labels = []
    for policy, name in zip(policies, names):
        label = name if names.count(name) == 1 else f"{name}@{Path(policy).stem}"
        labels.append(label)
    if len(set(labels)) != len(labels):
        raise ValueError(f"policies: two entries would share the label(s) {sorted(labels)}; give each once")
    return labels


def plan_episodes(config: EvalConfig, labels: list[str]) -> list[EpisodeSpec]:
    """Every episode of the matrix, policy by policy, then condition, noise level, seed.

    Videos go to each policy's first `config.videos` episodes in (seed, condition, noise) order (none
    to the expert), in the first deployment setting. Deployment settings vary slowest within a policy.
    """
    specs: list[EpisodeSpec] = []
    for policy, label in zip(config.policies, labels):
        video_order = sorted(
            (
                (seed, ci, ni)
                for seed in config.seeds
                for ci in range(len(config.conditions))
                for ni in range(len(config.noise))
            ),
            key=lambda k: (config.seeds.index(k[0]), k[1], k[2]),
        )
        with_video = set(video_order[: config.videos]) if policy != EXPERT else set()
        for di, deploy in enumerate(config.deploy):
            for ci, condition in enumerate(config.conditions):
                for ni, noise in enumerate(config.noise):
                    for seed in config.seeds:
                        specs.append(
                            EpisodeSpec(
                                index=len(specs),
                                policy=policy,
                                label=label,
                                condition=condition,
                                noise_variance=float(noise),
                                seed=int(seed),
                                video=di == 0 and (seed, ci, ni) in with_video,
                                deploy=deploy,
                            )
                        )
    return specs


def check_sweep_axes(config: Any, names: Sequence[str]) -> None:
    """The swept lists `names` of `config` (e.g. noise, seeds) each hold at least one value and no repeats;
    seeds are ≥ 0 and noise variances ≥ 0.

    Raises:
        ValueError: naming the list and its values.
    """
    for name in names:
        values = getattr(config, name)
        if not values:
            raise ValueError(f"{name}: give at least one value")
        if len(set(values)) != len(values):
            raise ValueError(f"{name}: repeated values in {values}")
    if any(seed < 0 for seed in config.seeds):
        raise ValueError(f"seeds: must be ≥ 0, got {config.seeds}")
    if any(not v >= 0 for v in config.noise):
        raise ValueError(f"noise: variances must be ≥ 0, got {config.noise}")
