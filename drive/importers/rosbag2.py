"""ROS 2 bags in MCAP (the default storage since Iron), read with `mcap` + `mcap-ros2-support`, no ROS.

A bag is a `.mcap` file or a bag directory of them. The camera comes from a sensor_msgs/msg/Image or
CompressedImage topic, steering from ackermann_msgs/msg/AckermannDriveStamped (`drive.steering_angle`,
rad, left positive per REP 103) or any topic and numeric field the config names (e.g. a
std_msgs/msg/Float32's `data`), speed from the Ackermann message, nav_msgs/msg/Odometry or
geometry_msgs/msg/TwistStamped; odometry also fills the pose (x_m, y_m, yaw_rad). Frames are read
twice: once for their stamps, once (only the frames the grid needs) for their pixels, so a long bag
never sits in memory.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from drive.importers.align import Series
from drive.importers.config import ImportConfig, Rosbag2Config
from drive.importers.optional import require
from drive.importers.source import SourceDrive, source_name

ODOMETRY = "nav_msgs/msg/Odometry"
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
ACKERMANN = "ackermann_msgs/msg/AckermannDriveStamped"
DEFAULT_FIELDS = {
    ACKERMANN: ("drive.steering_angle", "drive.speed"),
    "std_msgs/msg/Float32": ("data", "data"),
    "std_msgs/msg/Float64": ("data", "data"),
    ODOMETRY: (None, "twist.twist.linear.x"),
    "geometry_msgs/msg/TwistStamped": (None, "twist.linear.x"),
    "geometry_msgs/msg/Twist": (None, "linear.x"),
}
"""Message type -> (default steering field, default speed field)."""


def bag_files(path: Path) -> list[Path]:
    """The `.mcap` files of a bag (a file, or a bag directory), in name order."""
    files = [path] if path.is_file() else sorted(path.glob("*.mcap"))
    if not files:
        raise ValueError(
            f"{path}: no .mcap files (only MCAP storage is supported; convert sqlite3 bags "
            "with `ros2 bag convert`)"
        )
    return files


def list_topics(path: Path) -> list[tuple[str, str, int]]:
    """(topic, message type, message count) of every channel in the bag, sorted by topic."""
    reader_mod = require("mcap.reader", "the rosbag2 importer")
    counts: Counter[tuple[str, str]] = Counter()
    for file in bag_files(path):
        with open(file, "rb") as f:
            summary = reader_mod.make_reader(f).get_summary()
        if summary is None:
            raise ValueError(f"{file}: MCAP file without a summary section (unfinished recording?)")
        stats = summary.statistics.channel_message_counts if summary.statistics else {}
        for cid, channel in summary.channels.items():
            schema = summary.schemas.get(channel.schema_id)
            counts[(channel.topic, schema.name if schema else "?")] += stats.get(cid, 0)
    return sorted((topic, kind, n) for (topic, kind), n in counts.items())


def _pick(
    topics: list[tuple[str, str, int]], wanted: str, kinds: Iterable[str], what: str, key: str
) -> tuple[str, str]:
    """(topic, type) named by the config, or the only topic of one of `kinds`."""
    kinds = tuple(kinds)
    listing = ", ".join(f"{t} ({k})" for t, k, _ in topics)
    if wanted:
        for topic, kind, _ in topics:
            if topic == wanted:
                return topic, kind
        raise ValueError(f"the bag has no topic {wanted!r} ({key}); its topics: {listing}")
    found = [(t, k) for t, k, _ in topics if k in kinds]
    if len(found) != 1:
        how = "none" if not found else "several: " + ", ".join(t for t, _ in found)
        raise ValueError(
            f"no single {what} topic of type {' or '.join(kinds)} ({how}); set {key}. Topics: {listing}"
        )
    return found[0]


def field_value(message: Any, dotted: str, where: str) -> float:
    """The numeric field `dotted` (e.g. `drive.steering_angle`) of a decoded message."""
    value = message
    for name in dotted.split("."):
        if not hasattr(value, name):
            raise ValueError(f"{where}: the message has no field {dotted!r}")
        value = getattr(value, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: field {dotted!r} is not a number ({type(value).__name__})")
    return float(value)


def _stamp_s(message: Any, log_time_ns: int, config: Rosbag2Config) -> tuple[float, bool]:
    """(stamp in s, whether the log time stood in for an empty header stamp)."""
    header = getattr(message, "header", None) if config.time_source == "header" else None
    if header is None:
        return 1e-9 * log_time_ns, False
    if header.stamp.sec == 0 and header.stamp.nanosec == 0:  # a publisher that never set the stamp
        return 1e-9 * log_time_ns, True
    return float(header.stamp.sec) + 1e-9 * float(header.stamp.nanosec), False


def _messages(files: list[Path], topics: list[str]) -> Iterator[tuple[str, Any, int]]:
    """(topic, decoded message, log time ns) of `topics`, file by file, in log-time order."""
    reader_mod = require("mcap.reader", "the rosbag2 importer")
    decoder = require("mcap_ros2.decoder", "the rosbag2 importer")
    for file in files:
        with open(file, "rb") as f:
            reader = reader_mod.make_reader(f, decoder_factories=[decoder.DecoderFactory()])
            for _schema, channel, message, decoded in reader.iter_decoded_messages(topics=topics):
                yield channel.topic, decoded, message.log_time


def odometry_pose(message: Any) -> tuple[float, float, float]:
    """(x_m, y_m, yaw_rad) of a nav_msgs Odometry message (yaw: rotation about z, counter-clockwise)."""
    p, q = message.pose.pose.position, message.pose.pose.orientation
    yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
    return float(p.x), float(p.y), yaw


def decode_image(message: Any, kind: str) -> np.ndarray:
    """A sensor_msgs Image or CompressedImage message -> (H, W, 3) uint8 RGB.

    Raises:
        ValueError: an encoding other than rgb8, bgr8, rgba8, bgra8, mono8, or undecodable bytes.
    """
    data = np.frombuffer(bytes(message.data), np.uint8)
    if kind.endswith("CompressedImage"):
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"a CompressedImage ({message.format!r}) could not be decoded")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}.get(message.encoding)
    if channels is None:
        raise ValueError(
            f"Image encoding {message.encoding!r} is not supported (rgb8, bgr8, rgba8, bgra8, mono8)"
        )
    rows = data.reshape(message.height, message.step)[:, : message.width * channels]
    image = rows.reshape(message.height, message.width, channels)
    code = {
        "bgr8": cv2.COLOR_BGR2RGB,
        "rgba8": cv2.COLOR_RGBA2RGB,
        "bgra8": cv2.COLOR_BGRA2RGB,
        "mono8": cv2.COLOR_GRAY2RGB,
    }
    return (
        cv2.cvtColor(image, code[message.encoding])
        if message.encoding in code
        else np.ascontiguousarray(image)
    )


def _series(samples: list[tuple[float, float]], what: str, dropped: Counter[str]) -> Series:
    """Samples sorted by stamp; samples repeating a stamp are left out and counted."""
    samples.sort(key=lambda s: s[0])
    times = np.array([t for t, _ in samples], np.float64)
    keep = np.concatenate([[True], np.diff(times) > 0]) if len(times) else np.zeros(0, bool)
    if (~keep).any():
        dropped[f"{what} samples repeating a stamp"] += int(np.sum(~keep))
    return Series(times[keep], np.array([v for _, v in samples], np.float64)[keep])


def _resolve_topics(topics: list[tuple[str, str, int]], cfg: Rosbag2Config) -> dict[str, Any]:
    """Camera, steering and speed topics with their types and fields, from the config or the bag."""
    image_topic, image_kind = _pick(topics, cfg.image_topic, IMAGE_TYPES, "camera", "rosbag2.image_topic")
    steer_topic, steer_kind = _pick(
        topics, cfg.steering_topic, (ACKERMANN,), "steering", "rosbag2.steering_topic"
    )
    steer_field = cfg.steering_field or DEFAULT_FIELDS.get(steer_kind, (None, None))[0]
    if not steer_field:
        raise ValueError(f"set rosbag2.steering_field: {steer_topic} is a {steer_kind}, which has no default")
    speed_topic, speed_kind = steer_topic, steer_kind
    if cfg.speed_topic:
        speed_topic, speed_kind = _pick(topics, cfg.speed_topic, (), "speed", "rosbag2.speed_topic")
    speed_field = cfg.speed_field or DEFAULT_FIELDS.get(speed_kind, (None, None))[1]
    if cfg.speed_topic and not speed_field:
        raise ValueError(f"set rosbag2.speed_field: {speed_topic} is a {speed_kind}, which has no default")
    if not cfg.speed_topic and steer_kind != ACKERMANN:
        speed_topic, speed_field = "", None
    return {
        "image": (image_topic, image_kind),
        "steer": (steer_topic, steer_kind, steer_field),
        "speed": (speed_topic, speed_kind, speed_field),
    }


def _pose_series(pose: list[tuple[float, float, float, float]]) -> dict[str, Series]:
    """(stamp, x, y, yaw) odometry samples -> x_m, y_m, yaw_rad series (yaw unwrapped); {} for none."""
    if not pose:
        return {}
    table = np.array(sorted(pose))
    table[:, 3] = np.unwrap(table[:, 3])  # so that interpolation never runs the long way round
    keep = np.concatenate([[True], np.diff(table[:, 0]) > 0])
    return {
        name: Series(table[keep, 0], table[keep, c]) for c, name in ((1, "x_m"), (2, "y_m"), (3, "yaw_rad"))
    }


def read_source(path: Path, config: ImportConfig) -> SourceDrive:
    """Read the bag at `path`: camera stamps, steering and speed samples (pixels later, on demand)."""
    cfg = config.rosbag2
    files = bag_files(path)
    chosen = _resolve_topics(list_topics(path), cfg)
    image_topic, image_kind = chosen["image"]
    steer_topic, steer_kind, steer_field = chosen["steer"]
    speed_topic, speed_kind, speed_field = chosen["speed"]

    dropped: Counter[str] = Counter()
    frame_stamps: list[tuple[float, int]] = []  # (stamp, ordinal in the image topic)
    steer: list[tuple[float, float]] = []
    speed: list[tuple[float, float]] = []
    ordinal = 0
    wanted = sorted({image_topic, steer_topic} | ({speed_topic} if speed_topic else set()))
    pose: list[tuple[float, float, float, float]] = []  # (stamp, x, y, yaw) of odometry
    empty_stamps: Counter[str] = Counter()
    for topic, message, log_ns in _messages(files, wanted):
        stamp, empty = _stamp_s(message, log_ns, cfg)
        empty_stamps[topic] += empty
        if topic == image_topic:
            if frame_stamps and stamp <= frame_stamps[-1][0]:
                dropped["camera frames whose stamp is not after the previous frame's"] += 1
            else:
                frame_stamps.append((stamp, ordinal))
            ordinal += 1
        if topic == steer_topic:
            steer.append((stamp, field_value(message, steer_field, f"{topic} ({steer_kind})")))
        if speed_field and topic == speed_topic:
            speed.append((stamp, field_value(message, speed_field, f"{topic} ({speed_kind})")))
            if speed_kind == ODOMETRY:
                pose.append((stamp, *odometry_pose(message)))
    if not steer:
        raise ValueError(f"{path}: the steering topic {steer_topic} holds no messages")
    label = _series(steer, "steering", dropped)
    speeds = _series(speed, "speed", dropped) if speed else None
    ordinals = [o for _, o in frame_stamps]
    poses = _pose_series(pose)

    def read_frames(indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        by_ordinal = {ordinals[int(i)]: int(i) for i in indices}
        seen = 0
        for _topic, message, _log in _messages(files, [image_topic]):
            if seen in by_ordinal:
                yield by_ordinal[seen], decode_image(message, image_kind)
            seen += 1

    read = {
        f"camera frames ({image_topic}, {image_kind})": ordinal,
        f"steering samples ({steer_topic}.{steer_field})": len(steer),
    }
    if speed_field:
        read[f"speed samples ({speed_topic}.{speed_field})"] = len(speed)
    return SourceDrive(
        name=source_name(path),
        frame_times_s=np.array([t for t, _ in frame_stamps], np.float64),
        read_frames=read_frames,
        label=label,
        speed=speeds,
        pose=poses,
        default_label_kind="road_wheel_angle" if steer_kind == ACKERMANN else None,
        default_left_positive=True,  # REP 103: positive yaw and steering are to the left
        read=read,
        dropped=dict(dropped),
        details={
            "files": [f.name for f in files],
            "image_topic": image_topic,
            "steering": f"{steer_topic}.{steer_field}",
            "speed": f"{speed_topic}.{speed_field}" if speed_field else None,
            "time_source": cfg.time_source,
            "empty_header_stamps_log_time_used": {t: n for t, n in empty_stamps.items() if n},
        },
    )
