"""The import config: how a foreign drive becomes an episode (strict dataclasses, `--config`/`--set`).

One `ImportConfig` serves every format: the shared sections (vehicle, label, align, camera) plus one
section per format (`rosbag2`, `donkeycar`, `video`); a format reads its own section and ignores the
others. The resolved config is saved in every imported episode's meta.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

LabelKind = Literal["auto", "road_wheel_angle", "steering_wheel_angle", "curvature", "normalized"]


@dataclass(frozen=True)
class VehicleConfig:
    """The car, for the bicycle model κ = tan(δ) / L.

    Attributes:
        wheelbase_m: distance between the axles L, m (0 = not given; required for angle labels).
        max_steer_rad: road-wheel angle at full lock, rad (required for `normalized` labels, which
            map ±1 to ±max_steer_rad; elsewhere only used to count implausible labels).
        steering_ratio: steering-wheel angle / road-wheel angle (for `steering_wheel_angle` labels).
    """

    wheelbase_m: float = 0.0
    max_steer_rad: float = 0.0
    steering_ratio: float = 0.0


@dataclass(frozen=True)
class LabelConfig:
    """What the recorded steering value means.

    Attributes:
        kind: `road_wheel_angle` (δ), `steering_wheel_angle` (δ · steering_ratio), `curvature` (1/m),
            `normalized` (±1 = ±max_steer_rad), or `auto`: the format's own (Ackermann messages:
            road_wheel_angle; Donkeycar: normalized; video CSVs and plain numbers: must be given).
        unit: `rad` or `deg` for angles (ignored for curvature and normalized).
        left_positive: whether a positive value steers left (ROS REP 103: yes); None = the format's
            default (ROS: true, Donkeycar: false, video: true).
    """

    kind: LabelKind = "auto"
    unit: Literal["rad", "deg"] = "rad"
    left_positive: bool | None = None


@dataclass(frozen=True)
class AlignConfig:
    """Resampling to the control rate.

    Each control step t_k = t_0 + k · control_period_s takes the nearest camera frame within
    `frame_tolerance_s` and a label within `label_tolerance_s` (`nearest`: the nearest sample;
    `interpolate`: linear between the samples before and after t_k, which must be at most
    2 · label_tolerance_s apart). A step without either is dropped and ends the episode; the next
    valid step starts a new one. Episodes shorter than `min_episode_frames` are dropped (reported).
    """

    control_period_s: float = 0.05
    method: Literal["nearest", "interpolate"] = "interpolate"
    frame_tolerance_s: float = 0.03
    label_tolerance_s: float = 0.1
    speed_tolerance_s: float = 0.25
    min_episode_frames: int = 16


@dataclass(frozen=True)
class CameraConfig:
    """Crop and resize to the camera contract (`perception.preprocess.PreprocessContract`'s fields)."""

    out_height: int = 78
    out_width: int = 200
    crop_top_frac: float = 0.0
    crop_bottom_frac: float = 0.0


@dataclass(frozen=True)
class Rosbag2Config:
    """Topics of a ROS 2 bag (see `drive recordings import rosbag2 BAG --list-topics`).

    Attributes:
        image_topic: a sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage topic ("" = the only one).
        steering_topic: the steering topic ("" = the only ackermann_msgs/msg/AckermannDriveStamped one).
        steering_field: dotted field of the steering message ("" = `drive.steering_angle` for
            AckermannDriveStamped, `data` for std_msgs Float32/Float64).
        speed_topic: speed source ("" = the Ackermann message's `drive.speed` when steering is
            Ackermann, else none): nav_msgs/msg/Odometry, geometry_msgs/msg/TwistStamped,
            AckermannDriveStamped or a Float32/Float64.
        speed_field: dotted field ("" = the type's forward speed: twist.twist.linear.x,
            twist.linear.x, drive.speed or data).
        time_source: `header` (the messages' header.stamp; the log time for messages without a
            header) or `log` (the time the bag recorder received each message).
    """

    image_topic: str = ""
    steering_topic: str = ""
    steering_field: str = ""
    speed_topic: str = ""
    speed_field: str = ""
    time_source: Literal["header", "log"] = "header"


@dataclass(frozen=True)
class DonkeycarConfig:
    """Keys of a Donkeycar v2 tub's records."""

    image_key: str = "cam/image_array"
    angle_key: str = "user/angle"
    throttle_key: str = "user/throttle"


@dataclass(frozen=True)
class VideoConfig:
    """A video file plus a CSV log.

    Attributes:
        csv: the CSV file ("" = the video's path with the suffix `.csv`).
        time_column: CSV column of the timestamp.
        time_unit: unit of that column: `s`, `ms`, `us` or `ns`.
        steering_column: CSV column of the steering value (its meaning: the `label` section).
        speed_column: CSV column of the speed in m/s ("" = none).
        video_start_s: the CSV time of the video's first frame, s (the video's own clock starts at 0).
    """

    csv: str = ""
    time_column: str = "timestamp_s"
    time_unit: Literal["s", "ms", "us", "ns"] = "s"
    steering_column: str = "steering"
    speed_column: str = ""
    video_start_s: float = 0.0


@dataclass(frozen=True)
class ImportConfig:
    """Everything `drive recordings import` needs beyond the source path.

    Attributes:
        track: the name written as the episodes' track ("" = the source's file or folder name).
        condition: the condition written into meta.json.
        chunk_frames: frames per stored chunk of the episodes.
    """

    vehicle: VehicleConfig = field(default_factory=VehicleConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    rosbag2: Rosbag2Config = field(default_factory=Rosbag2Config)
    donkeycar: DonkeycarConfig = field(default_factory=DonkeycarConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    track: str = ""
    condition: str = "real"
    chunk_frames: int = 64

    def __post_init__(self) -> None:
        a = self.align
        for name in ("control_period_s", "frame_tolerance_s", "label_tolerance_s", "speed_tolerance_s"):
            if getattr(a, name) <= 0:
                raise ValueError(f"align.{name} must be > 0, got {getattr(a, name)}")
        if a.min_episode_frames < 1:
            raise ValueError(f"align.min_episode_frames must be >= 1, got {a.min_episode_frames}")
        for name in ("wheelbase_m", "max_steer_rad", "steering_ratio"):
            if getattr(self.vehicle, name) < 0:
                raise ValueError(f"vehicle.{name} must be >= 0 (0 = not given)")
        if self.chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {self.chunk_frames}")
