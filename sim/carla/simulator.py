"""The `Simulator` protocol on a CARLA 0.9.16 server: `CarlaSimulator`.

One object per run: it connects, prepares the world (town, or an OpenDRIVE world built from an embedded
track), switches it to synchronous mode with a fixed 0.05 s step, sets the weather of the condition and
plans a closed route along the map's lanes (`sim/carla/route.py`). Each `reset` spawns the ego vehicle,
ticks once so the client sees it (its wheel positions give the wheelbase), attaches an RGB camera, a
collision and a lane-invasion sensor, places the car on the route at speed and ticks twice more (the
first observation is one tick after the placement). Each `step` turns the curvature command into steer
(bicycle model on the measured wheelbase and steering limit) and pedals (speed PID), ticks the world once
and waits for the camera image of exactly that frame.

Privileged info is the embedded simulator's, computed by the same code on the route's `Track`: the
pose is the rear-axle centre in our frame (left positive, `sim/carla/frames.py`), lateral offset,
heading error and progress come from `TrackLocator`, the expert is the same pure pursuit. `info` holds
`sim.types.INFO_KEYS` plus `s_m`, `lap`, `curvature_1pm`, `steer_rad`, `speed_mps`,
`executed_curvature_1pm`, `commanded_curvature_1pm`, `time_s`, `truncated`, `episode_seed`, and CARLA's
own `lane_invasion` (markings crossed during the step) and `world_frame` (the server's frame id).

Every exit path undoes what the run did: `close()` (also via `with`, and at interpreter exit through a
finalizer when nobody called it) destroys the sensors and the vehicle and restores the world's original
settings, also after an exception or Ctrl-C mid-episode.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import numpy as np

from sim.carla.config import CarlaConfig, track_kind
from sim.carla.connect import connect
from sim.carla.ego_vehicle import SpeedController, VehicleGeometry, vehicle_geometry
from sim.carla.frames import carla_transform, carla_vector, pose_from_carla, yaw_rate_from_carla
from sim.carla.lazy_import import import_carla
from sim.carla.route import Route, closed_route
from sim.carla.sensors import EventCollector, FrameQueue, bgra_to_rgb
from sim.carla.weather import weather_for
from sim.carla.world import Resources, SynchronousMode, prepare_world
from sim.expert import PurePursuitExpert
from sim.tracks.geometry import ProgressTracker, TrackLocator, on_road
from sim.types import Command, EpisodeSeeds, Observation, Pose, checked_reset_options

"""Keys `reset(options=...)` accepts (as the embedded simulator's)."""


class CarlaSimulator:
    """Closed-loop driving on a CARLA server (the `Simulator` protocol, plus `teleport`).

    Args:
        config: the run's configuration (server address, map, vehicle, camera, controllers).

    Raises:
        CarlaConnectionError: no server at `config.host:config.port` (within `config.timeout_s`).
    """

    def __init__(self, config: CarlaConfig | None = None) -> None:
        self.config = config or CarlaConfig()
        self._carla = import_carla()
        self._resources = Resources()
        self._finalizer = weakref.finalize(self, self._resources.release)
        self._closed = False
        self._vehicle: Any = None
        self._geometry: VehicleGeometry | None = None
        self._camera_queue = FrameQueue("camera")
        self._collisions = EventCollector()
        self._invasions = EventCollector()
        self._speed = SpeedController(self.config.speed, self.config.dt_ctrl_s)
        self._seeds = EpisodeSeeds()
        self._episode_seed: int | None = None
        self._progress: ProgressTracker | None = None
        self._frame = 0
        self._speed_mps = 0.0
        self._commanded_1pm = 0.0
        self._steer = 0.0
        try:
            cfg = self.config
            self.connection = connect(cfg.host, cfg.port, cfg.timeout_s)
            self.client = self.connection.client
            self.world = prepare_world(self.client, cfg)
            self.map = self.world.get_map()
            self._resources.sync = SynchronousMode(self.world, cfg.dt_ctrl_s)
            self._resources.sync.enable()
            self.world.set_weather(weather_for(cfg.condition))
            self.route = self._plan_route()
        except BaseException:
            self.close()
            raise
        self.track = self.route.track
        self.locator = TrackLocator(self.track)
        self.expert = PurePursuitExpert(self.track, self.config.expert, self.locator)

    # -- Simulator protocol -------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        """Spawn the ego vehicle on the route and start an episode.

        Args:
            seed: episode seed (the start position along the route when not fixed); None continues the
                sequence of the last seeded reset.
            options: optional overrides, keys from `RESET_OPTIONS`.

        Returns:
            The first observation (frame 0, time 0) and info.
        """
        self._check_open()
        options = checked_reset_options(options)
        seed = self._seeds.next(seed)
        self._episode_seed = seed
        cfg = self.config
        start_s = options.get("start_s_m", cfg.start_s_m)
        if start_s is None:
            start_s = float(np.random.default_rng(seed).uniform(0.0, self.track.length_m))
        start_s = float(start_s) % self.track.length_m
        speed = options.get("speed_mps", cfg.start_speed_mps)
        speed = cfg.target_speed_mps if speed is None else float(speed)
        pose = self.locator.pose_at(
            start_s, float(options.get("lateral_offset_m", 0.0)), float(options.get("heading_error_rad", 0.0))
        )
        self._resources.destroy_actors()
        self._camera_queue.clear()
        self._collisions.drain()
        self._invasions.drain()
        self._spawn_vehicle(pose)
        self.world.tick(cfg.timeout_s)  # now the client sees the car: its transform and wheels are known
        self._geometry = vehicle_geometry(self._vehicle)
        self._attach_sensors()
        # Wheels set to follow the road from the start (as in the embedded simulator): no jolt.
        self._commanded_1pm = self.locator.point_at(start_s).curvature_1pm
        self._steer = self._geometry_checked().steer_command(self._commanded_1pm, speed)
        self._vehicle.apply_control(self._carla.VehicleControl(throttle=0.0, steer=self._steer, brake=0.0))
        self._place(pose, speed)
        self.world.tick(cfg.timeout_s)  # the actors settle; the camera streams from the next frame on
        self._place(pose, speed)
        self._speed.reset(speed)
        self._progress = ProgressTracker(self.track.length_m, self.locator.locate(pose).s_m)
        self._frame = 0
        frame = self.world.tick(cfg.timeout_s)
        self._collisions.drain()  # a bump from the spawn drop is not the policy's collision
        self._invasions.drain()
        return self._observe(frame)

    def step(self, command: Command) -> tuple[Observation, dict[str, Any]]:
        """Apply `command` for one control period (one world tick); observe the result."""
        self._check_open()
        if self._progress is None:
            raise RuntimeError("call reset() before step()")
        if not isinstance(command, Command):
            raise TypeError(f"step() takes a sim.types.Command, got {type(command).__name__}")
        kappa = float(command.curvature_1pm)
        if not math.isfinite(kappa):
            raise ValueError(f"curvature_1pm must be finite, got {kappa}")
        target = self.config.target_speed_mps
        if command.target_speed_mps is not None:
            target = float(command.target_speed_mps)
            if not (math.isfinite(target) and target >= 0):
                raise ValueError(f"target_speed_mps must be finite and >= 0, got {target}")
        geometry = self._geometry_checked()
        self._steer = geometry.steer_command(kappa, self._speed_mps)
        throttle, brake = self._speed.pedals(target, self._speed_mps)
        self._vehicle.apply_control(
            self._carla.VehicleControl(throttle=throttle, steer=self._steer, brake=brake)
        )
        self._commanded_1pm = kappa
        frame = self.world.tick(self.config.timeout_s)
        self._frame += 1
        return self._observe(frame)

    def teleport(
        self, s_m: float, lateral_offset_m: float = 0.0, heading_error_rad: float = 0.0
    ) -> tuple[Observation, dict[str, Any]]:
        """Put the car on the route at `s_m` (the safety driver's takeover), then tick once.

        The car keeps its speed along the new heading (`config.teleport_keeps_speed`, as in the embedded
        simulator) or stands; its wheels are set to follow the road, and the jump is not progress. The
        tick the new camera image needs advances the clock by one control period.

        Returns:
            The observation and info at the new pose.
        """
        self._check_open()
        if self._progress is None:
            raise RuntimeError("call reset() before teleport()")
        pose = self.locator.pose_at(s_m, lateral_offset_m, heading_error_rad)
        speed = self._speed_mps if self.config.teleport_keeps_speed else 0.0
        self._place(pose, speed)
        self._commanded_1pm = self.locator.point_at(s_m).curvature_1pm
        self._steer = self._geometry_checked().steer_command(self._commanded_1pm, speed)
        self._vehicle.apply_control(self._carla.VehicleControl(throttle=0.0, steer=self._steer, brake=0.0))
        self._speed.reset(speed)
        self._progress.rebase(self.locator.locate(pose).s_m)
        frame = self.world.tick(self.config.timeout_s)
        self._frame += 1
        return self._observe(frame)

    def close(self) -> None:
        """Destroy the sensors and the vehicle and restore the world's settings; safe to call twice."""
        self._closed = True
        self._vehicle = None
        self._finalizer()

    def __enter__(self) -> CarlaSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the simulator is closed")

    def _geometry_checked(self) -> VehicleGeometry:
        if self._geometry is None:
            raise RuntimeError("call reset() first: no vehicle")
        return self._geometry

    def _plan_route(self) -> Route:
        cfg = self.config
        if track_kind(cfg.track) == "embedded":
            from sim.tracks.track_gen import make_track
            from sim.tracks.xodr import DRIVING_LANE_ID

            # The export's road 1 starts at the track's s = 0: route s equals track s (to ~0.1 mm).
            start = self.map.get_waypoint_xodr(1, DRIVING_LANE_ID, 0.0)
            if start is None:
                raise ValueError(f"the world's map is not the export of track {cfg.track!r} (no road 1)")
            return closed_route(self.map, start, name=cfg.track, shoulder_m=make_track(cfg.track).shoulder_m)
        points = self.map.get_spawn_points()
        if not points:
            raise ValueError(f"map {self.map.name!r} has no spawn points to start a route from")
        if cfg.spawn_point >= len(points):
            raise ValueError(
                f"spawn_point {cfg.spawn_point} out of range: map {self.map.name!r} has {len(points)}"
            )
        start = self.map.get_waypoint(points[cfg.spawn_point].location)
        return closed_route(self.map, start, name=cfg.track, shoulder_m=cfg.shoulder_m)

    def _spawn_vehicle(self, pose: Pose) -> None:
        """Spawn the ego vehicle with its origin at `pose` (registered for clean-up)."""
        cfg = self.config
        library = self.world.get_blueprint_library()
        try:
            blueprint = library.find(cfg.vehicle)
        except (IndexError, RuntimeError):
            known = sorted(bp.id for bp in library.filter("vehicle.*"))
            raise ValueError(
                f"no vehicle blueprint {cfg.vehicle!r}; the server has: {', '.join(known)}"
            ) from None
        if blueprint.has_attribute("role_name"):
            blueprint.set_attribute("role_name", "hero")
        vehicle = self.world.try_spawn_actor(
            blueprint, carla_transform(pose, self._z_at(pose) + cfg.spawn_lift_m)
        )
        if vehicle is None:
            raise RuntimeError(
                f"could not spawn {cfg.vehicle} at ({pose.x_m:.1f}, {pose.y_m:.1f}): place occupied"
            )
        self._resources.actors.append(vehicle)
        self._vehicle = vehicle

    def _attach_sensors(self) -> None:
        """Attach the camera (ahead of the rear axle), collision and lane-invasion sensors; all stream
        into their queues and are registered for clean-up."""
        carla, cam = self._carla, self.config.camera
        library = self.world.get_blueprint_library()
        camera_bp = library.find("sensor.camera.rgb")
        for key, value in (("image_size_x", cam.width), ("image_size_y", cam.height), ("fov", cam.fov_deg)):
            camera_bp.set_attribute(key, str(value))
        if camera_bp.has_attribute("sensor_tick"):
            camera_bp.set_attribute("sensor_tick", "0.0")  # an image every tick
        mount = carla.Transform(
            carla.Location(x=self._geometry_checked().rear_axle_x_m + cam.forward_m, z=cam.height_m),
            carla.Rotation(pitch=-math.degrees(cam.pitch_rad)),
        )
        sensors = (
            (camera_bp, mount, self._camera_queue.put),
            (library.find("sensor.other.collision"), carla.Transform(), self._collisions.put),
            (library.find("sensor.other.lane_invasion"), carla.Transform(), self._invasions.put),
        )
        for blueprint, transform, callback in sensors:
            sensor = self.world.spawn_actor(blueprint, transform, attach_to=self._vehicle)
            self._resources.actors.append(sensor)
            sensor.listen(callback)

    def _place(self, pose: Pose, speed_mps: float) -> None:
        """Move the vehicle so its rear axle is at `pose`, moving forward at `speed_mps`, not turning."""
        geometry = self._geometry_checked()
        back = geometry.rear_axle_x_m  # the actor's origin is -rear_axle_x ahead of the rear axle
        origin = Pose(
            pose.x_m - back * math.cos(pose.yaw_rad), pose.y_m - back * math.sin(pose.yaw_rad), pose.yaw_rad
        )
        self._vehicle.set_transform(carla_transform(origin, self._z_at(pose) + self.config.spawn_lift_m))
        self._vehicle.set_target_velocity(
            carla_vector(speed_mps * math.cos(pose.yaw_rad), speed_mps * math.sin(pose.yaw_rad))
        )
        self._vehicle.set_target_angular_velocity(carla_vector(0.0, 0.0))

    def _z_at(self, pose: Pose) -> float:
        """Road height under `pose` (from the route's nearest point), m."""
        return float(self.route.z_m[self.locator.nearest_index(pose.x_m, pose.y_m)])

    def _observe(self, frame: int) -> tuple[Observation, dict[str, Any]]:
        assert self._progress is not None and self._geometry is not None
        cfg, geometry = self.config, self._geometry
        image = self._camera_queue.get(frame, cfg.sensor_timeout_s)
        rgb = bgra_to_rgb(image.raw_data, int(image.height), int(image.width))
        transform = self._vehicle.get_transform()
        origin = pose_from_carla(transform)
        back = geometry.rear_axle_x_m
        pose = Pose(
            origin.x_m + back * math.cos(origin.yaw_rad),
            origin.y_m + back * math.sin(origin.yaw_rad),
            origin.yaw_rad,
        )
        velocity, forward = self._vehicle.get_velocity(), transform.get_forward_vector()
        speed = float(velocity.x * forward.x + velocity.y * forward.y + velocity.z * forward.z)
        self._speed_mps = speed
        yaw_rate = yaw_rate_from_carla(self._vehicle.get_angular_velocity())
        lane = self.locator.locate(pose)
        progress = self._progress.update(lane.s_m)
        laps = self._progress.laps
        time_s = self._frame * cfg.dt_ctrl_s
        truncated = (cfg.max_time_s is not None and time_s >= cfg.max_time_s - 1e-9) or (
            cfg.max_laps is not None and laps >= cfg.max_laps
        )
        collisions, invasions = self._collisions.drain(), self._invasions.drain()
        info = {
            "lateral_offset_m": lane.lateral_offset_m,
            "heading_error_rad": lane.heading_error_rad,
            "progress_m": progress,
            "on_road": on_road(lane.lateral_offset_m, self.track, geometry.half_width_m),
            "collision": bool(collisions),
            "expert_curvature_1pm": self.expert.curvature_1pm(pose, max(speed, 0.0), lane.s_m),
            "pose": pose,
            "s_m": lane.s_m,
            "lap": laps,
            "curvature_1pm": lane.curvature_1pm,
            "steer_rad": geometry.steer_angle_rad(self._steer, speed),
            "speed_mps": speed,
            "executed_curvature_1pm": yaw_rate / speed if speed > 0.5 else self._commanded_1pm,
            "commanded_curvature_1pm": self._commanded_1pm,
            "time_s": time_s,
            "truncated": bool(truncated),
            "episode_seed": self._episode_seed,
            "lane_invasion": bool(invasions),
            "world_frame": int(frame),
        }
        obs = Observation(image=rgb, speed_mps=speed, timestamp_s=time_s, frame=self._frame)
        return obs, info
