"""The CARLA backend's parts: frame conversion, sensors plumbing, controllers, route graph, config, weather.

Most need no carla package (they read CARLA objects by attribute); those that build carla value types
are marked `carla`.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from sim.carla.config import CarlaConfig, SpeedControlConfig, track_kind
from sim.carla.ego_vehicle import SpeedController, VehicleGeometry
from sim.carla.frames import (
    pose_from_carla,
    steer_to_carla,
    yaw_from_carla,
    yaw_rate_from_carla,
    yaw_to_carla,
)
from sim.carla.route import shortest_cycle
from sim.carla.sensors import EventCollector, FrameQueue, SensorTimeoutError, bgra_to_rgb
from sim.types import Pose


def _transform(x, y, yaw_deg):
    return SimpleNamespace(location=SimpleNamespace(x=x, y=y, z=0.0), rotation=SimpleNamespace(yaw=yaw_deg))


# -- frames --------------------------------------------------------------------------------------------


def test_carla_frame_is_mirrored_into_ours():
    # CARLA: 10 m east, 5 m south (y right), facing 90° clockwise = south. Ours: y = -5, yaw = -90°.
    pose = pose_from_carla(_transform(10.0, 5.0, 90.0))
    assert (pose.x_m, pose.y_m) == (10.0, -5.0)
    assert pose.yaw_rad == pytest.approx(-math.pi / 2)
    for yaw in np.linspace(-3.1, 3.1, 13):
        assert yaw_from_carla(yaw_to_carla(yaw)) == pytest.approx(yaw)
    assert yaw_from_carla(190.0) == pytest.approx(math.radians(170.0))  # wrapped to [-π, π)
    assert yaw_rate_from_carla(SimpleNamespace(z=-30.0)) == pytest.approx(math.radians(30.0))  # left turn
    assert steer_to_carla(0.25) == -0.25  # left is negative steer in CARLA


@pytest.mark.carla
def test_carla_transform_round_trip():
    pytest.importorskip("carla")
    from sim.carla.frames import carla_transform, carla_vector

    pose = Pose(3.0, 4.0, 0.7)
    t = carla_transform(pose, z_m=1.5, pitch_rad=-0.1)
    assert (t.location.y, t.location.z) == pytest.approx((-4.0, 1.5))
    assert t.rotation.pitch == pytest.approx(math.degrees(-0.1), abs=1e-4)
    back = pose_from_carla(t)
    assert (back.x_m, back.y_m, back.yaw_rad) == pytest.approx((3.0, 4.0, 0.7), abs=1e-5)
    # Our left normal is CARLA's negative right vector.
    right = t.get_right_vector()
    assert (right.x, -right.y) == pytest.approx((math.sin(0.7), -math.cos(0.7)), abs=1e-6)
    v = carla_vector(1.0, 2.0, 3.0)
    assert (v.x, v.y, v.z) == (1.0, -2.0, 3.0)


# -- sensors -------------------------------------------------------------------------------------------


def test_bgra_becomes_rgb():
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 1, 2, 3, 255
    bgra[1, 2] = (7, 8, 9, 255)
    rgb = bgra_to_rgb(bgra.tobytes(), 2, 3)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    assert tuple(rgb[0, 0]) == (3, 2, 1) and tuple(rgb[1, 2]) == (9, 8, 7)
    with pytest.raises(ValueError, match="expected 2x4x4"):
        bgra_to_rgb(bgra.tobytes(), 2, 4)


def test_frame_queue_waits_for_its_frame_and_drops_stale_ones():
    queue = FrameQueue("camera")
    items = [SimpleNamespace(frame=f) for f in (12, 10, 11, 13)]

    def deliver():
        for item in items:  # out of order, from another thread, a little late
            time.sleep(0.005)
            queue.put(item)

    threading.Thread(target=deliver).start()
    assert queue.get(12, timeout_s=2.0).frame == 12
    assert queue.get(13, timeout_s=2.0).frame == 13
    # 10 and 11 were older than 12: dropped, whether they came before or after it.
    assert queue.dropped == 2
    queue.put(SimpleNamespace(frame=11))  # a straggler of a consumed frame is dropped on arrival
    assert queue.dropped == 3
    queue.put(SimpleNamespace(frame=15))  # early data for a later frame is kept
    assert queue.get(15, timeout_s=0.1).frame == 15


def test_frame_queue_times_out_with_a_clear_message():
    queue = FrameQueue("camera")
    queue.put(SimpleNamespace(frame=4))
    started = time.monotonic()
    with pytest.raises(SensorTimeoutError, match=r"no camera data for world frame 5 within 0.1 s.*\[4\]"):
        queue.get(5, timeout_s=0.1)
    assert time.monotonic() - started < 0.5
    queue.clear()
    queue.put(SimpleNamespace(frame=1))  # a new episode: frame ids may start lower again
    assert queue.get(1, timeout_s=0.1).frame == 1


def test_event_collector_drains_in_frame_order():
    events = EventCollector()
    for frame in (5, 3, 4):
        events.put(SimpleNamespace(frame=frame))
    assert [e.frame for e in events.drain()] == [3, 4, 5]
    assert events.drain() == []


# -- controllers ---------------------------------------------------------------------------------------


GEOMETRY = VehicleGeometry(
    wheelbase_m=2.85,
    rear_axle_x_m=-1.5,
    max_steer_rad=math.radians(70.0),
    steer_speeds_mps=(0.0, 20 / 3.6, 60 / 3.6),
    steer_factors=(1.0, 0.9, 0.8),
)


def test_curvature_maps_to_carla_steer_through_the_bicycle_model():
    kappa = 0.05  # a 20 m left turn
    steer = GEOMETRY.steer_command(kappa, 0.0)
    assert steer == pytest.approx(-math.atan(2.85 * kappa) / math.radians(70.0))  # left = negative steer
    assert GEOMETRY.steer_command(-kappa, 0.0) == pytest.approx(-steer)
    # The steering curve leaves less angle at speed, so the same curvature needs more steer.
    at_speed = GEOMETRY.steer_command(kappa, 40 / 3.6)
    assert at_speed == pytest.approx(steer / 0.85)
    assert GEOMETRY.steer_angle_rad(at_speed, 40 / 3.6) == pytest.approx(math.atan(2.85 * kappa))
    assert GEOMETRY.steer_command(10.0, 0.0) == -1.0 and GEOMETRY.steer_command(-10.0, 0.0) == 1.0


def test_speed_pid_reaches_and_holds_the_target():
    pid = SpeedController(SpeedControlConfig(), dt_s=0.05)
    speed = 0.0
    throttles = []
    for _ in range(400):  # a plant like CARLA's: ~4 m/s² at full throttle, 8 m/s² full brake, drag
        throttle, brake = pid.pedals(8.0, speed)
        assert 0 <= throttle <= 0.8 and 0 <= brake <= 0.8 and throttle * brake == 0
        throttles.append(throttle)
        speed = max(0.0, speed + (4.0 * throttle - 8.0 * brake - 0.2 - 4e-4 * speed * speed) * 0.05)
    assert speed == pytest.approx(8.0, abs=0.05)
    assert throttles[0] == 0.8  # saturated at first, without winding up (no big overshoot below)
    pid.reset(12.0)
    assert pid.pedals(8.0, 12.0)[1] > 0  # too fast: brake
    assert pid.pedals(0.0, 0.0) == (0.0, 0.8)  # stopped with a zero target: held


# -- route graph ---------------------------------------------------------------------------------------


def test_shortest_cycle_through_a_node():
    graph = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": ["a", "e"], "e": []}
    lengths = {"a": 10.0, "b": 50.0, "c": 5.0, "d": 1.0, "e": 1.0}
    cycle = shortest_cycle("a", graph.__getitem__, lengths.__getitem__)
    assert cycle == ["a", "c", "d"]
    assert shortest_cycle("d", graph.__getitem__, lengths.__getitem__) == ["d", "a", "c"]
    with pytest.raises(ValueError, match="no closed route passes through 'e'"):
        shortest_cycle("e", graph.__getitem__, lengths.__getitem__)


# -- config --------------------------------------------------------------------------------------------


def test_track_kinds_and_config_validation():
    assert track_kind("Town01") == "town" and track_kind("Town10HD_Opt") == "town"
    assert track_kind("/Game/Carla/Maps/Town03") == "town"
    assert track_kind("country") == "embedded" and track_kind("seed-12") == "embedded"
    assert track_kind("maps/ring.xodr") == "xodr"
    with pytest.raises(ValueError, match="neither a CARLA town.*nor a path to an .xodr"):
        CarlaConfig(track="Townhall")
    with pytest.raises(ValueError, match="port"):
        CarlaConfig(port=70000)
    with pytest.raises(ValueError, match="unknown condition 'fog'"):
        CarlaConfig(condition="fog")
    with pytest.raises(ValueError, match="vehicle blueprint id"):
        CarlaConfig(vehicle="tesla")
    with pytest.raises(ValueError, match="max_throttle"):
        SpeedControlConfig(max_throttle=1.5)


def test_config_loads_strictly_without_carla():
    from common.strict_config import ConfigError, load_config

    config = load_config(CarlaConfig, {"port": 2002, "camera": {"width": 320}}, ["speed.kp=0.8"])
    assert (config.port, config.camera.width, config.speed.kp) == (2002, 320, 0.8)
    with pytest.raises(ConfigError, match="camera.widht"):
        load_config(CarlaConfig, {"camera": {"widht": 3}})


def test_missing_carla_gives_an_install_hint(monkeypatch):
    from sim.carla.lazy_import import import_carla

    monkeypatch.setitem(sys.modules, "carla", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'liquid-drive\[carla\]'.*carla==0.9.16"):
        import_carla()


@pytest.mark.carla
def test_weather_of_each_condition():
    carla = pytest.importorskip("carla")
    from sim.carla.weather import WINTER, weather_for

    assert weather_for("summer") == carla.WeatherParameters.ClearNoon
    assert weather_for("rain") == carla.WeatherParameters.HardRainNoon
    assert weather_for("dusk") == carla.WeatherParameters.ClearSunset
    night = weather_for("night")
    assert night == carla.WeatherParameters.ClearNight and night.sun_altitude_angle < 0
    winter = weather_for("winter")
    for name, value in WINTER.items():
        assert getattr(winter, name) == pytest.approx(value)
    assert winter.precipitation == 0.0 and 0 < winter.sun_altitude_angle < 20  # no snow; a low sun
    assert winter.scattering_intensity == carla.WeatherParameters.ClearNoon.scattering_intensity
    with pytest.raises(ValueError, match="unknown condition"):
        weather_for("snowstorm")


@pytest.mark.carla
def test_vehicle_geometry_from_physics_in_centimetres():
    pytest.importorskip("carla")
    from sim.carla.ego_vehicle import vehicle_geometry
    from tests.sim.fake_carla_actors import FakeBlueprint, FakeVehicle

    class _World:
        destroyed: list = []

    for yaw in (0.0, 135.0):
        vehicle = FakeVehicle(
            _World(), FakeBlueprint("vehicle.tesla.model3"), _carla_transform(50.0, -20.0, yaw)
        )
        with pytest.raises(ValueError, match="not near the actor"):
            vehicle_geometry(vehicle)  # spawned, not ticked yet: the client sees a zero transform
        vehicle.in_snapshot = True
        geometry = vehicle_geometry(vehicle)
        assert geometry.wheelbase_m == pytest.approx(2.85, abs=1e-4)
        assert geometry.rear_axle_x_m == pytest.approx(-1.5, abs=1e-4)
        assert geometry.max_steer_rad == pytest.approx(math.radians(70.0))
        assert geometry.steer_speeds_mps[1] == pytest.approx(20 / 3.6) and geometry.steer_factors[
            1
        ] == pytest.approx(0.9)
        assert geometry.half_width_m == pytest.approx(0.95)


def _carla_transform(x, y, yaw):
    import carla

    return carla.Transform(carla.Location(x, y, 0.0), carla.Rotation(yaw=yaw))
