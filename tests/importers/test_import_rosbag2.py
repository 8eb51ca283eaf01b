"""ROS 2 MCAP bags written with mcap-ros2-support's writer and real message definitions, imported."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drive.cli import main
from tests.importers.helpers import episodes, meta, shown_source_frames, telemetry
from tests.importers.makers import ODOMETRY_YAW_RAD, write_bag

WHEELBASE_M = 2.5
CROP = ["--set", "camera.crop_top_frac=0.1875", "--no-progress"]  # 96 rows -> 78, then 256 -> 200 wide


def steering_rad(t_s: float) -> float:
    """A ramp through zero: right (negative) first, then left."""
    return 0.02 * (t_s - 100.0) * 10 - 0.2


def _import(fmt_args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["recordings", "import", *fmt_args, *CROP])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_ackermann_bag_gives_curvature_frames_and_speed_at_20hz(tmp_path, capsys):
    frames_t = 100.0 + 0.05 * np.arange(40)  # 20 Hz camera
    steer_t = 100.0 + 0.02 * np.arange(101)  # 50 Hz Ackermann commands
    bag = write_bag(tmp_path / "drive.mcap", frames_t, steer_t, steering_rad, speed_mps=3.0)
    out = tmp_path / "out"
    text = _import(
        ["rosbag2", str(bag), "--out", str(out), "--set", f"vehicle.wheelbase_m={WHEELBASE_M}"], capsys
    )
    assert "1 episode(s), 40 frames" in text and "40 camera frames" in text

    [episode] = episodes(out)
    tel = telemetry(episode)
    expected = np.tan([steering_rad(t) for t in tel["source_time_s"]]) / WHEELBASE_M
    # interpolating curvature between 50 Hz samples vs the exact ramp: < 1e-5 1/m apart; float32 storage
    np.testing.assert_allclose(tel["expert_curvature_1pm"], expected, atol=2e-5)
    assert tel["expert_curvature_1pm"][0] < 0 < tel["expert_curvature_1pm"][-1]  # right, then left
    np.testing.assert_allclose(tel["timestamp_s"], 0.05 * np.arange(40), atol=1e-9)
    np.testing.assert_allclose(tel["speed_mps"], 3.0)
    np.testing.assert_allclose(tel["progress_m"], 3.0 * 0.05 * np.arange(1, 41), rtol=1e-6)
    np.testing.assert_array_equal(shown_source_frames(episode), np.arange(40))
    np.testing.assert_array_equal(tel["source_frame"], np.arange(40))

    m = meta(episode)
    assert m["simulator"] == "import:rosbag2" and m["track"] == "drive" and m["condition"] == "real"
    conversion = m["extra"]["import"]["conversion"]
    assert conversion["kind"] == "road_wheel_angle" and conversion["wheelbase_m"] == WHEELBASE_M
    assert conversion["left_positive"] is True and "tan(value_rad) / 2.5" in conversion["formula"]
    assert m["config"]["vehicle"]["wheelbase_m"] == WHEELBASE_M


def test_compressed_images_and_a_float32_steering_wheel_in_degrees(tmp_path, capsys):
    frames_t = 5.0 + 0.05 * np.arange(30)
    steer_t = 5.0 + 0.05 * np.arange(30) + 0.01  # 10 ms after each frame
    wheel_deg = lambda t: 90.0 * math.sin(t)  # noqa: E731 - the steering wheel, degrees, left positive
    bag = write_bag(
        tmp_path / "bag" / "bag_0.mcap",
        frames_t,
        steer_t,
        wheel_deg,
        compressed=True,
        steering_type="std_msgs/msg/Float32",
        speed_type="geometry_msgs/msg/TwistStamped",
        speed_mps=1.5,
    )
    (tmp_path / "bag" / "metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")
    out = tmp_path / "out"
    settings = [
        "label.kind=steering_wheel_angle",
        "label.unit=deg",
        "vehicle.wheelbase_m=0.33",
        "vehicle.steering_ratio=15",
        "rosbag2.steering_topic=/steering",
        "rosbag2.speed_topic=/speed",
        "align.method=nearest",
        "align.label_tolerance_s=0.02",
    ]
    args = ["rosbag2", str(bag.parent), "--out", str(out)] + [x for s in settings for x in ("--set", s)]
    _import(args, capsys)
    [episode] = episodes(out)
    tel = telemetry(episode)
    # nearest label: the sample 10 ms after each frame; the Float32 has no header, so its log time is used
    expected = np.tan(np.deg2rad([wheel_deg(t + 0.01) for t in tel["source_time_s"]]) / 15) / 0.33
    np.testing.assert_allclose(tel["expert_curvature_1pm"], expected, rtol=1e-5, atol=1e-6)
    assert np.sign(tel["expert_curvature_1pm"][0]) == np.sign(math.sin(5.01))  # sin(5) < 0: right
    np.testing.assert_allclose(tel["speed_mps"], 1.5)
    np.testing.assert_array_equal(shown_source_frames(episode), np.arange(30))
    assert meta(episode)["extra"]["import"]["details"]["files"] == ["bag_0.mcap"]


def test_list_topics(tmp_path, capsys):
    bag = write_bag(tmp_path / "d.mcap", [1.0, 1.05], [1.0, 1.02], lambda t: 0.0)
    assert main(["recordings", "import", "rosbag2", str(bag), "--list-topics"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "/camera\tsensor_msgs/msg/Image\t2",
        "/steering\tackermann_msgs/msg/AckermannDriveStamped\t2",
    ]


def test_missing_steering_topic_is_one_clear_error(tmp_path, capsys):
    bag = write_bag(tmp_path / "d.mcap", 1.0 + 0.05 * np.arange(20), [], lambda t: 0.0)
    out = tmp_path / "out"
    assert main(["recordings", "import", "rosbag2", str(bag), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no single steering topic of type ackermann_msgs/msg/AckermannDriveStamped (none)" in err
    assert "/camera (sensor_msgs/msg/Image)" in err and len(err.strip().splitlines()) == 1
    code = main(
        [
            "recordings",
            "import",
            "rosbag2",
            str(bag),
            "--out",
            str(out),
            "--set",
            "rosbag2.steering_topic=/cmd",
        ]
    )
    assert code == 2 and "the bag has no topic '/cmd' (rosbag2.steering_topic)" in capsys.readouterr().err
    assert not out.exists()


def test_camera_dropout_splits_the_drive_and_is_reported(tmp_path, capsys):
    frames_t = [t for t in 100.0 + 0.05 * np.arange(60) if not 101.0 <= t < 101.5]  # 0.5 s without camera
    bag = write_bag(tmp_path / "d.mcap", frames_t, 100.0 + 0.02 * np.arange(150), steering_rad)
    out = tmp_path / "out"
    text = _import(["rosbag2", str(bag), "--out", str(out), "--set", "vehicle.wheelbase_m=2.5"], capsys)
    assert "dropped steps: 10 no camera frame within align.frame_tolerance_s" in text
    first, second = episodes(out)
    a, b = telemetry(first), telemetry(second)
    assert len(a["frame"]) == 20 and len(b["frame"]) == 30 and b["frame"][0] == 30
    # after the gap, frames and labels still belong to the same instant: nothing shifted
    np.testing.assert_array_equal(shown_source_frames(second), np.arange(20, 50))
    expected = np.tan([steering_rad(t) for t in b["source_time_s"]]) / WHEELBASE_M
    np.testing.assert_allclose(b["expert_curvature_1pm"], expected, atol=2e-5)


def test_a_camera_on_another_clock_is_an_error_until_log_time_is_used(tmp_path, capsys):
    """Header stamps of a camera 1000 s ahead of the bag's clock: with Float32 steering (no header, log
    time) no label is near any frame, which is one error naming why; `time_source: log` aligns them."""
    times = 50.0 + 0.05 * np.arange(30)
    bag = write_bag(
        tmp_path / "d.mcap",
        times,
        times + 0.005,
        lambda t: 0.01 * (t - 50.0),
        steering_type="std_msgs/msg/Float32",
        speed_type="nav_msgs/msg/Odometry",
        speed_mps=2.0,
        camera_clock_offset_s=1000.0,
    )
    out = tmp_path / "out"
    args = ["recordings", "import", "rosbag2", str(bag), "--out", str(out), "--no-progress"]
    for s in ("rosbag2.steering_topic=/steering", "rosbag2.speed_topic=/speed", "label.kind=curvature"):
        args += ["--set", s]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "all 30 control steps dropped (30 no steering label within align.label_tolerance_s)" in err
    assert not out.exists()
    assert main([*args, "--set", "rosbag2.time_source=log"]) == 0, capsys.readouterr().err
    [episode] = episodes(out)
    tel = telemetry(episode)
    np.testing.assert_allclose(tel["expert_curvature_1pm"], 0.01 * (tel["source_time_s"] - 50.0), atol=1e-6)
    np.testing.assert_allclose(tel["speed_mps"], 2.0)  # odometry twist.twist.linear.x
    t = tel["source_time_s"]
    np.testing.assert_allclose(tel["x_m"], 2.0 * t * np.cos(ODOMETRY_YAW_RAD), rtol=1e-6)
    np.testing.assert_allclose(tel["y_m"], 2.0 * t * np.sin(ODOMETRY_YAW_RAD), rtol=1e-6)
    np.testing.assert_allclose(tel["yaw_rad"], ODOMETRY_YAW_RAD, rtol=1e-6)
    assert "x_m" not in meta(episode)["extra"]["import"]["not_measured"]


def test_unset_header_stamps_fall_back_to_log_time_and_say_so(tmp_path, capsys):
    times = 3.0 + 0.05 * np.arange(20)
    bag = write_bag(tmp_path / "d.mcap", times, times, steering_rad, unstamped_steering=True)
    out = tmp_path / "out"
    _import(["rosbag2", str(bag), "--out", str(out), "--set", "vehicle.wheelbase_m=2.5"], capsys)
    [episode] = episodes(out)
    tel = telemetry(episode)
    expected = np.tan([steering_rad(t) for t in tel["source_time_s"]]) / WHEELBASE_M
    np.testing.assert_allclose(tel["expert_curvature_1pm"], expected, atol=2e-5)
    details = meta(episode)["extra"]["import"]["details"]
    assert details["empty_header_stamps_log_time_used"] == {"/steering": 20}
