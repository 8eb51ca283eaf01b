"""The ROS 2 message definitions (as `ros2 bag record` stores them in an MCAP schema) the tests write.

Each text is the type's .msg file followed by its dependencies, separated the way rosbag2 does.
"""

from __future__ import annotations

SEP = "\n" + "=" * 80 + "\n"
TIME = "MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec"
HEADER = "MSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id"

IMAGE = SEP.join(
    [
        "std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\nuint8 is_bigendian\n"
        "uint32 step\nuint8[] data",
        HEADER,
        TIME,
    ]
)
COMPRESSED_IMAGE = SEP.join(["std_msgs/Header header\nstring format\nuint8[] data", HEADER, TIME])
ACKERMANN_DRIVE_STAMPED = SEP.join(
    [
        "std_msgs/Header header\nAckermannDrive drive",
        "MSG: ackermann_msgs/AckermannDrive\nfloat32 steering_angle\nfloat32 steering_angle_velocity\n"
        "float32 speed\nfloat32 acceleration\nfloat32 jerk",
        HEADER,
        TIME,
    ]
)
FLOAT32 = "float32 data"
TWIST_STAMPED = SEP.join(
    [
        "std_msgs/Header header\nTwist twist",
        "MSG: geometry_msgs/Twist\nVector3  linear\nVector3  angular",
        "MSG: geometry_msgs/Vector3\nfloat64 x\nfloat64 y\nfloat64 z",
        HEADER,
        TIME,
    ]
)

VECTOR3 = "MSG: geometry_msgs/Vector3\nfloat64 x\nfloat64 y\nfloat64 z"
ODOMETRY = SEP.join(
    [
        "std_msgs/Header header\nstring child_frame_id\ngeometry_msgs/PoseWithCovariance pose\n"
        "geometry_msgs/TwistWithCovariance twist",
        HEADER,
        TIME,
        "MSG: geometry_msgs/PoseWithCovariance\nPose pose\nfloat64[36] covariance",
        "MSG: geometry_msgs/Pose\nPoint position\nQuaternion orientation",
        "MSG: geometry_msgs/Point\nfloat64 x\nfloat64 y\nfloat64 z",
        "MSG: geometry_msgs/Quaternion\nfloat64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1",
        "MSG: geometry_msgs/TwistWithCovariance\nTwist twist\nfloat64[36] covariance",
        "MSG: geometry_msgs/Twist\nVector3  linear\nVector3  angular",
        VECTOR3,
    ]
)

DEFINITIONS = {
    "sensor_msgs/msg/Image": IMAGE,
    "sensor_msgs/msg/CompressedImage": COMPRESSED_IMAGE,
    "ackermann_msgs/msg/AckermannDriveStamped": ACKERMANN_DRIVE_STAMPED,
    "std_msgs/msg/Float32": FLOAT32,
    "geometry_msgs/msg/TwistStamped": TWIST_STAMPED,
    "nav_msgs/msg/Odometry": ODOMETRY,
}
