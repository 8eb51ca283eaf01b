"""CarlaSimulator through the fake server layer: protocol, frame matching, clean-up, teleport, closed loop."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest

import sim.carla.connect
from sim.carla.config import CarlaCameraConfig, CarlaConfig
from sim.carla.sensors import SensorTimeoutError
from sim.carla.weather import weather_for
from sim.safety_driver import SafetyDriver, SafetyDriverConfig
from sim.tracks.track_gen import make_track
from sim.tracks.xodr import track_to_xodr
from sim.types import DT_CTRL_S, INFO_KEYS, Command, Observation, Simulator

carla = pytest.importorskip("carla")
pytestmark = pytest.mark.carla

from sim.carla.simulator import CarlaSimulator  # noqa: E402
from tests.sim.fake_carla import FakeClient, FakeServer, FakeVehicle  # noqa: E402

TOWNS = {"Town01": track_to_xodr(make_track("seed-3")), "Town02": track_to_xodr(make_track("forest"))}


@pytest.fixture
def server(monkeypatch) -> FakeServer:
    srv = FakeServer(TOWNS, current="Town01")
    monkeypatch.setattr(
        sim.carla.connect, "make_client", lambda host, port, timeout_s: FakeClient(srv, host, port)
    )
    return srv


def _sim(**kwargs) -> CarlaSimulator:
    kwargs.setdefault("track", "oval")
    return CarlaSimulator(CarlaConfig(**kwargs))


def _assert_cleaned_up(server: FakeServer) -> None:
    world = server.world
    assert world.actors and all(not a.is_alive for a in world.actors)
    assert not any(getattr(a, "is_listening", False) for a in world.actors)
    assert world.settings.synchronous_mode is False
    assert world.settings.fixed_delta_seconds in (None, 0.0)


def test_protocol_observations_and_info(server):
    with _sim() as sim:
        assert isinstance(sim, Simulator)
        assert server.loads == ["OpenDriveMap"]  # the oval, built from its OpenDRIVE export
        assert (
            server.world.settings.synchronous_mode and server.world.settings.fixed_delta_seconds == DT_CTRL_S
        )
        obs, info = sim.reset(seed=0)
        assert isinstance(obs, Observation) and (obs.frame, obs.timestamp_s) == (0, 0.0)
        assert obs.image.shape == (78, 200, 3) and obs.image.dtype == np.uint8
        assert tuple(obs.image[5, 5]) == (30, 20, 10)  # the fake's BGRA (10, 20, 30, 255) as RGB
        assert set(INFO_KEYS) <= set(info)
        assert {"s_m", "lap", "time_s", "truncated", "lane_invasion", "world_frame"} <= set(info)
        assert obs.speed_mps == pytest.approx(8.0, abs=0.1)
        assert abs(info["lateral_offset_m"]) < 0.02 and abs(info["heading_error_rad"]) < 0.01
        keys = set(info)
        for k in range(1, 4):
            obs, info = sim.step(Command(info["expert_curvature_1pm"]))
            assert set(info) == keys
            assert obs.frame == k and obs.timestamp_s == pytest.approx(k * DT_CTRL_S) == info["time_s"]
        vehicle = next(a for a in server.world.alive() if isinstance(a, FakeVehicle))
        assert vehicle.type_id == "vehicle.tesla.model3" and vehicle.attributes["role_name"] == "hero"
        cameras = [a for a in server.world.alive() if a.type_id == "sensor.camera.rgb"]
        assert cameras[0].attributes["image_size_x"] == "200" and cameras[0].parent is vehicle
    _assert_cleaned_up(server)


def test_the_pose_is_the_rear_axle_in_our_frame(server):
    with _sim(start_speed_mps=0.0, target_speed_mps=0.0) as sim:
        obs, info = sim.reset(seed=0, options={"start_s_m": 100.0, "lateral_offset_m": 0.5})
        t = next(a for a in server.world.alive() if isinstance(a, FakeVehicle)).get_transform()
        pose = info["pose"]
        # The actor's origin is 1.5 m ahead of the rear axle, and CARLA's y and yaw are mirrored.
        assert t.location.x == pytest.approx(pose.x_m + 1.5 * math.cos(pose.yaw_rad), abs=1e-3)
        assert t.location.y == pytest.approx(-(pose.y_m + 1.5 * math.sin(pose.yaw_rad)), abs=1e-3)
        assert t.rotation.yaw == pytest.approx(-math.degrees(pose.yaw_rad), abs=1e-3)
        assert info["lateral_offset_m"] == pytest.approx(0.5, abs=1e-3)  # left of the centre: positive
        assert info["s_m"] == pytest.approx(100.0, abs=1e-3)


def test_seeded_starts_and_reset_options(server):
    with _sim() as sim:
        s = [sim.reset(seed=seed)[1]["s_m"] for seed in (3, 3, 4)]
        assert s[0] == pytest.approx(s[1], abs=1e-6) and abs(s[0] - s[2]) > 1.0
        with pytest.raises(ValueError, match="unknown reset option"):
            sim.reset(seed=0, options={"start_s": 1.0})
        with pytest.raises(TypeError, match="Command"):
            sim.step(0.1)
        with pytest.raises(ValueError, match="finite"):
            sim.step(Command(float("nan")))


def test_frames_are_matched_while_images_arrive_late_and_out_of_order(server):
    server.camera_delay_s = (0.0, 0.02)
    server.camera_echo_s = 0.03  # every image comes again later, while the next frame is awaited
    with _sim() as sim:
        obs, info = sim.reset(seed=1)
        for _ in range(30):
            # The image is the one of the frame the world just simulated: the fake writes its id in row 0.
            assert obs.image[0, 0, 2] == info["world_frame"] % 256
            obs, info = sim.step(Command(info["expert_curvature_1pm"]))
        assert sim._camera_queue.dropped >= 10  # stale copies were thrown away, never returned


def test_a_silent_camera_fails_clearly_and_everything_is_undone(server):
    server.camera_silent = True
    with pytest.raises(
        SensorTimeoutError, match=r"no camera data for world frame \d+ within 0.2 s.*RenderOffScreen"
    ):
        with _sim(sensor_timeout_s=0.2) as sim:
            sim.reset(seed=0)
    _assert_cleaned_up(server)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_synchronous_mode_is_restored_after_an_exception_mid_episode(server, error):
    original = server.world.get_settings()
    server.fail_on_tick = 12
    server.fail_with = error
    with pytest.raises(error, match="injected failure"):
        with _sim() as sim:
            obs, info = sim.reset(seed=0)
            while True:
                obs, info = sim.step(Command(info["expert_curvature_1pm"]))
    _assert_cleaned_up(server)
    last = server.world.settings_history[-1]
    assert (last.synchronous_mode, last.fixed_delta_seconds) == (
        original.synchronous_mode,
        original.fixed_delta_seconds,
    )


def test_a_simulator_never_closed_is_cleaned_up_when_collected(server):
    sim = _sim()
    sim.reset(seed=0)
    assert server.world.settings.synchronous_mode
    del sim
    gc.collect()
    _assert_cleaned_up(server)


def test_close_twice_and_use_after_close(server):
    sim = _sim()
    sim.reset(seed=0)
    sim.close()
    sim.close()
    with pytest.raises(RuntimeError, match="closed"):
        sim.reset(seed=0)
    assert len(server.world.destroyed) == 4  # vehicle, camera, collision and lane-invasion sensors


def test_failing_construction_leaves_nothing_behind(server):
    with pytest.raises(ValueError, match="spawn_point 99 out of range"):
        _sim(track="Town01", spawn_point=99)
    assert server.world.settings.synchronous_mode is False


def test_reset_destroys_the_previous_episode_actors(server):
    with _sim() as sim:
        sim.reset(seed=0)
        sim.reset(seed=1)
        assert len(server.world.alive()) == 4 and len(server.world.destroyed) == 4


class _Swerve:
    """A driver that steers hard left: the safety driver must take over again and again."""

    name = "swerve"
    hidden_state = None
    saliency = None

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs, info) -> float:
        return 0.08


def test_teleport_on_intervention_puts_the_car_back_on_the_lane(server):
    from drive.closed_loop.loop import EpisodeLimits, run_episode

    with _sim(track="country") as sim:
        safety = SafetyDriver(sim, SafetyDriverConfig(cooldown_s=0.5))
        result = run_episode(safety, _Swerve(), seed=0, limits=EpisodeLimits(max_steps=200))
    tel = result.telemetry
    assert len(result.interventions) >= 3
    assert {row["cause"] for row in result.interventions} <= {"offset", "off_road", "heading"}
    for row in result.interventions:
        i = int(np.flatnonzero(tel["frame"] == row["frame"] + 1)[0])  # the frame after the takeover
        assert abs(tel["lateral_offset_m"][i]) < 0.1 and abs(tel["heading_error_rad"][i]) < 0.05
        assert tel["speed_mps"][i] == pytest.approx(tel["speed_mps"][i - 1], abs=0.5)  # speed kept
    # The jumps back are not progress: it grows by the distance driven, ~speed × dt per tick (the
    # takeover's tick replaces the row of the frame that triggered it).
    assert np.all(np.diff(tel["progress_m"]) / np.diff(tel["frame"]) < 0.45)
    assert set(np.diff(tel["frame"])) == {1, 2}
    _assert_cleaned_up(server)


def test_closed_loop_expert_episode_is_recorded(server, tmp_path):
    from drive.closed_loop.drivers import ExpertDriver
    from drive.closed_loop.loop import EpisodeLimits, run_episode
    from recordings.reader import Recording
    from sim.expert import PerturbationConfig
    from sim.registry import make_simulator, sim_meta

    config = CarlaConfig(track="forest", condition="rain")
    with make_simulator("carla", config, safety=SafetyDriverConfig()) as sim:
        assert sim.unwrapped.track.length_m == pytest.approx(make_track("forest").length_m, abs=0.01)
        result = run_episode(
            sim,
            ExpertDriver(PerturbationConfig()),
            seed=2,
            limits=EpisodeLimits(max_steps=200),
            record_to=tmp_path / "ep",
            meta=sim_meta("carla", config, 2),
        )
    assert server.world.weather.precipitation == weather_for("rain").precipitation
    assert result.interventions == []
    assert np.abs(result.telemetry["lateral_offset_m"]).max() < 1.0  # recovery pulses push it off-centre
    assert result.metrics is not None
    rec = Recording(tmp_path / "ep")
    assert rec.complete and rec.num_frames == 201
    assert (rec.meta["simulator"], rec.meta["track"], rec.meta["condition"]) == ("carla", "forest", "rain")
    assert rec.frames().shape == (201, 78, 200, 3)
    assert rec.telemetry["progress_m"][-1] == pytest.approx(200 * DT_CTRL_S * 8.0, rel=0.05)
    _assert_cleaned_up(server)


def test_a_policy_drives_end_to_end(server):
    from drive.closed_loop.drivers import PolicyRunner
    from drive.closed_loop.loop import EpisodeLimits, run_episode
    from policies.registry import build_policy

    runner = PolicyRunner(build_policy("ncp-ltc"))  # untrained: it wanders, the safety driver catches it
    camera = CarlaCameraConfig(width=200, height=78)
    with SafetyDriver(_sim(track="oval", camera=camera), SafetyDriverConfig()) as sim:
        result = run_episode(sim, runner, seed=0, limits=EpisodeLimits(max_steps=40))
    assert len(result.telemetry["frame"]) == 41 and result.hidden.shape == (41, 19)
    assert np.all(np.isfinite(result.telemetry["policy_curvature_1pm"]))
    _assert_cleaned_up(server)


def test_collisions_are_reported_and_trigger_the_safety_driver(server):
    with _sim(track="oval") as sim:
        ahead = sim.locator.pose_at(15.0)
        server.obstacles = [(ahead.x_m, -ahead.y_m, 2.0)]  # CARLA coordinates
        safety = SafetyDriver(sim, SafetyDriverConfig(cooldown_s=0.2))
        obs, info = safety.reset(seed=0, options={"start_s_m": 0.0})
        causes, collided = [], False
        for _ in range(60):
            obs, info = safety.step(Command(info["expert_curvature_1pm"]))
            collided |= info["collision"]
            causes += [row.cause for row in safety.log]
        assert collided and "collision" in causes


def test_lane_invasions_are_reported(server):
    with _sim(track="oval") as sim:
        obs, info = sim.reset(seed=0)
        invaded = False
        for _ in range(30):
            obs, info = sim.step(Command(0.1))  # far tighter than the oval: out of the lane
            invaded |= info["lane_invasion"]
        assert invaded and abs(info["lateral_offset_m"]) > 1.75


def test_a_town_route_starts_at_the_spawn_point_and_is_a_loop(server):
    with _sim(track="Town01", spawn_point=1, max_laps=1, target_speed_mps=12.0) as sim:
        assert server.loads == []  # already the current map: not loaded again
        start = server.world.map.get_spawn_points()[1].location
        assert sim.track.length_m == pytest.approx(make_track("seed-3").length_m, abs=0.01)
        obs, info = sim.reset(seed=0, options={"start_s_m": 0.0})
        assert math.hypot(*(np.array([start.x, -start.y]) - sim.track.centre_xy_m[0])) < 45.0
        for _ in range(10):
            obs, info = sim.step(Command(info["expert_curvature_1pm"]))
        assert info["on_road"] and not info["truncated"]
    with _sim(track="Town02"):
        assert server.loads == ["Town02"]
    with pytest.raises(ValueError, match="no map 'Town07'.*Town01, Town02"):
        _sim(track="Town07")


def test_the_world_is_rebuilt_only_for_a_different_road(server):
    with _sim(track="hills"):
        pass
    with _sim(track="hills"):
        pass
    with _sim(track="oval"):
        pass
    assert server.loads == ["OpenDriveMap", "OpenDriveMap"]


@pytest.mark.parametrize("condition", ["summer", "winter", "rain", "night", "dusk"])
def test_the_condition_sets_the_weather(server, condition):
    with _sim(condition=condition) as sim:
        expected = weather_for(condition)
        assert sim.world.weather.sun_altitude_angle == expected.sun_altitude_angle
        assert sim.world.weather.cloudiness == expected.cloudiness


def test_unknown_vehicle_blueprint_is_a_clear_error(server):
    with _sim(vehicle="vehicle.nope.nope") as sim:
        with pytest.raises(
            ValueError, match="no vehicle blueprint 'vehicle.nope.nope'.*vehicle.tesla.model3"
        ):
            sim.reset(seed=0)
