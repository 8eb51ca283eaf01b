"""Small real drives in foreign formats, written with each format's own tools or on-disk layout.

- `write_bag`: an MCAP ROS 2 bag through `mcap_ros2.writer.Writer` with real message definitions.
- `write_tub`: a Donkeycar v2 tub, byte for byte the layout `donkeycar.parts.tub_v2.Tub` writes
  (manifest of five JSON lines, `catalog_N.catalog` + `.catalog_manifest`, `images/<i>_cam_image_array_.jpg`,
  `\\r\\n` line ends).
- `write_video`: an MPEG-4 video encoded with PyAV, plus its CSV log.

Every camera frame shows its index in binary stripes (`frame_image`, read back by `index_shown`), so a
test can tell which source frame an imported frame shows.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from tests.importers.ros_messages import DEFINITIONS

CAMERA_SHAPE = (96, 256, 3)
"""Source frames: taller and wider than the 78x200 contract, so crop and resize both run."""


BITS = 8


def frame_image(index: int) -> np.ndarray:
    """(96, 256, 3) uint8 RGB frame showing `index` (< 256) in binary: 8 vertical stripes, bit 7 on the
    left, white for 1, dark for 0; survives JPEG, MPEG-4, cropping and resizing."""
    image = np.full(CAMERA_SHAPE, 25, np.uint8)
    stripe = CAMERA_SHAPE[1] // BITS
    for bit in range(BITS):
        if (index >> (BITS - 1 - bit)) & 1:
            image[:, bit * stripe : (bit + 1) * stripe] = 230
    return image


def index_shown(image: np.ndarray) -> int:
    """The index an (H, W, 3) frame made by `frame_image` shows, after any crop or resize."""
    stripe = image.shape[1] / BITS
    centres = [image[:, int((bit + 0.5) * stripe)].mean() for bit in range(BITS)]
    return sum(1 << (BITS - 1 - bit) for bit, level in enumerate(centres) if level > 127)


def _stamp(t_s: float) -> dict[str, object]:
    sec = int(np.floor(t_s))
    return {"stamp": {"sec": sec, "nanosec": int(round((t_s - sec) * 1e9))}, "frame_id": "base_link"}


def write_bag(
    path: Path,
    frame_times_s: Sequence[float],
    steer_times_s: Sequence[float],
    steer_value: Callable[[float], float],
    *,
    compressed: bool = False,
    steering_type: str = "ackermann_msgs/msg/AckermannDriveStamped",
    speed_mps: float = 3.0,
    speed_type: str | None = None,
    camera_clock_offset_s: float = 0.0,
    unstamped_steering: bool = False,
    image_of: Callable[[int], np.ndarray] = frame_image,
) -> Path:
    """An MCAP bag with /camera (Image rgb8 or CompressedImage jpeg) and /steering, and with `speed_type`
    (geometry_msgs/msg/TwistStamped or nav_msgs/msg/Odometry) a /speed topic beside each steering message.
    The camera's header stamps run `camera_clock_offset_s` ahead of the bag's log time (a sensor clock);
    `unstamped_steering` leaves the Ackermann headers' stamps 0, as some drivers publish them."""
    from mcap_ros2.writer import Writer

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f, Writer(f) as writer:
        image_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
        schemas = {name: writer.register_msgdef(name, text) for name, text in DEFINITIONS.items()}
        events = [(t, "camera", i) for i, t in enumerate(frame_times_s)]
        events += [(t, "steering", i) for i, t in enumerate(steer_times_s)]
        for t, kind, i in sorted(events):
            ns = int(round(t * 1e9))
            if kind == "camera":
                image = image_of(i)
                header = _stamp(t + camera_clock_offset_s)
                if compressed:
                    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                    msg: dict[str, object] = {"header": header, "format": "jpeg", "data": jpeg.tobytes()}
                else:
                    h, w, _ = image.shape
                    msg = {
                        "header": header,
                        "height": h,
                        "width": w,
                        "encoding": "rgb8",
                        "is_bigendian": 0,
                        "step": w * 3,
                        "data": image.tobytes(),
                    }
                writer.write_message("/camera", schemas[image_type], msg, log_time=ns)
            elif steering_type == "std_msgs/msg/Float32":
                writer.write_message(
                    "/steering", schemas[steering_type], {"data": steer_value(t)}, log_time=ns
                )
            else:
                drive = {
                    "steering_angle": steer_value(t),
                    "steering_angle_velocity": 0.0,
                    "speed": speed_mps,
                    "acceleration": 0.0,
                    "jerk": 0.0,
                }
                header = (
                    {"stamp": {"sec": 0, "nanosec": 0}, "frame_id": ""} if unstamped_steering else _stamp(t)
                )
                writer.write_message(
                    "/steering", schemas[steering_type], {"header": header, "drive": drive}, log_time=ns
                )
            if speed_type and kind == "steering":
                writer.write_message(
                    "/speed", schemas[speed_type], _speed_message(speed_type, t, speed_mps), log_time=ns
                )
    return path


ODOMETRY_YAW_RAD = 2.5
"""The heading of the odometry's straight drive (beyond ±pi/2, so a sign or quadrant slip shows)."""


def _speed_message(speed_type: str, t_s: float, speed_mps: float) -> dict[str, object]:
    twist = {"linear": {"x": speed_mps, "y": 0.0, "z": 0.0}, "angular": {"x": 0.0, "y": 0.0, "z": 0.0}}
    if speed_type == "geometry_msgs/msg/TwistStamped":
        return {"header": _stamp(t_s), "twist": twist}
    # driving straight along a heading of ODOMETRY_YAW_RAD (counter-clockwise from +x) at speed_mps
    yaw, distance = ODOMETRY_YAW_RAD, speed_mps * t_s
    position = {"x": distance * np.cos(yaw), "y": distance * np.sin(yaw), "z": 0.0}
    pose = {
        "position": position,
        "orientation": {"x": 0.0, "y": 0.0, "z": np.sin(yaw / 2), "w": np.cos(yaw / 2)},
    }
    return {
        "header": _stamp(t_s),
        "child_frame_id": "base_link",
        "pose": {"pose": pose, "covariance": [0.0] * 36},
        "twist": {"twist": twist, "covariance": [0.0] * 36},
    }


NEWLINE = "\r\n"  # donkeycar.parts.datastore_v2.NEWLINE


def write_tub(
    path: Path,
    times_ms: Sequence[int],
    angles: Sequence[float],
    *,
    skip: Sequence[int] = (),
    deleted: Sequence[int] = (),
    max_len: int = 1000,
    image_of: Callable[[int], np.ndarray] = frame_image,
) -> Path:
    """A Donkeycar v2 tub of len(times_ms) records; records in `skip` are never written (a gap in the
    index and time), records in `deleted` are written and then marked deleted in the manifest."""
    images = path / "images"
    images.mkdir(parents=True)
    inputs = ["cam/image_array", "user/angle", "user/throttle", "user/mode"]
    types = ["image_array", "float", "float", "str"]
    kept = [i for i in range(len(times_ms)) if i not in set(skip)]
    catalogs = [kept[i : i + max_len] for i in range(0, len(kept), max_len)]
    names = [f"catalog_{n}.catalog" for n in range(len(catalogs))]
    for name, indexes in zip(names, catalogs):
        lines = []
        for i in indexes:
            image_name = f"{i}_cam_image_array_.jpg"
            # Donkeycar saves RGB arrays through PIL; cv2 writes BGR, so convert to keep RGB on disk.
            cv2.imwrite(str(images / image_name), cv2.cvtColor(image_of(i), cv2.COLOR_RGB2BGR))
            record = {
                "cam/image_array": image_name,
                "user/angle": float(angles[i]),
                "user/throttle": 0.3,
                "user/mode": "user",
                "_timestamp_ms": int(times_ms[i]),
                "_index": i,
                "_session_id": "26-12-05_0",
            }
            lines.append(json.dumps(record, allow_nan=False, sort_keys=True) + NEWLINE)
        (path / name).write_text("".join(lines), newline="")
        meta = {
            "created_at": 1764900000.0,
            "line_lengths": [len(x) for x in lines],
            "path": name,
            "start_index": indexes[0],
        }
        manifest = name.replace(".catalog", ".catalog_manifest")
        (path / manifest).write_text(json.dumps(meta, sort_keys=True) + NEWLINE, newline="")
    manifest_lines = [
        inputs,
        types,
        {},
        {"created_at": 1764900000.0, "sessions": {"all_full_ids": ["26-12-05_0"]}},
        {
            "paths": names,
            "current_index": len(times_ms),
            "max_len": max_len,
            "deleted_indexes": list(deleted),
        },
    ]
    (path / "manifest.json").write_text("".join(json.dumps(x) + NEWLINE for x in manifest_lines), newline="")
    return path


def write_video(
    path: Path, num_frames: int, fps: int, image_of: Callable[[int], np.ndarray] = frame_image
) -> Path:
    """An MPEG-4 video (PyAV) of `num_frames` uniform frames at `fps`."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = image_of(0).shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"}
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(image_of(i), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """A CSV log with `header` and `rows` (cells written as given; "" for a missing value)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path
