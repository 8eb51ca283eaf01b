"""The recorded streams, declared once: telemetry columns (name, dtype, unit, doc) and per-frame arrays.

Every episode stores the base telemetry columns below, in this order, plus any extra scalar columns a
writer declares (e.g. `policy_curvature_1pm`). Frames are the `frames` array stream; writers may declare
extra per-frame array streams (e.g. `hidden_state` float32 (N,), `saliency` uint8 (h, w)).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Column:
    """One scalar telemetry column.

    Attributes:
        name: column name, a Python identifier with the unit as suffix (`speed_mps`).
        dtype: numpy dtype name: "bool", "int8".."int64", "uint8".."uint64", "float32" or "float64".
        unit: SI unit ("m/s", "1/m", ...); "" for flags and counters.
        doc: one line on what the value means.
    """

    name: str
    dtype: str
    unit: str = ""
    doc: str = ""

    def to_dict(self) -> dict[str, str]:
        """The JSON form stored in meta.json."""
        return {"name": self.name, "dtype": self.dtype, "unit": self.unit, "doc": self.doc}


TELEMETRY_COLUMNS: tuple[Column, ...] = (
    Column("frame", "int64", "", "control-step index of the simulator (strictly increasing)"),
    Column("timestamp_s", "float64", "s", "simulation time of the frame (strictly increasing)"),
    Column("speed_mps", "float32", "m/s", "forward speed of the ego vehicle"),
    Column("curvature_1pm", "float32", "1/m", "executed curvature command, left positive"),
    Column("expert_curvature_1pm", "float32", "1/m", "the expert's curvature: the training label"),
    Column("lateral_offset_m", "float32", "m", "signed distance from the lane centre, left positive"),
    Column("heading_error_rad", "float32", "rad", "vehicle yaw minus lane direction, left positive"),
    Column("progress_m", "float32", "m", "distance travelled along the route since reset"),
    Column("x_m", "float64", "m", "world x of the vehicle (east)"),
    Column("y_m", "float64", "m", "world y of the vehicle (north)"),
    Column("yaw_rad", "float32", "rad", "vehicle yaw, counter-clockwise from +x"),
    Column("on_road", "bool", "", "the vehicle's footprint centre is on the road surface"),
    Column("intervention", "bool", "", "a safety driver was in control during this step"),
    Column("noise_variance", "float32", "", "variance of the Gaussian image noise on the [0,1] image"),
)
"""The base telemetry table of every episode, in storage order."""

BASE_COLUMN_NAMES = frozenset(c.name for c in TELEMETRY_COLUMNS)
FRAMES_STREAM = "frames"
"""Name of the camera-image array stream, (T, H, W, 3) uint8 RGB."""

ALLOWED_DTYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
)
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UNIT_SUFFIXES = (("_1pm", "1/m"), ("_mps", "m/s"), ("_rad", "rad"), ("_m", "m"), ("_s", "s"))


def unit_from_name(name: str) -> str:
    """The SI unit implied by a column name's suffix (`_m`, `_mps`, `_rad`, `_s`, `_1pm`), else ""."""
    for suffix, unit in _UNIT_SUFFIXES:
        if name.endswith(suffix):
            return unit
    return ""


def canonical_dtype(dtype: Any, what: str) -> str:
    """The numpy dtype name of `dtype` if it is an allowed scalar dtype.

    Raises:
        ValueError: naming `what` when the dtype is not understood or not allowed.
    """
    try:
        name = str(np.dtype(dtype).name)
    except TypeError as exc:
        raise ValueError(f"{what}: unknown dtype {dtype!r}") from exc
    if name not in ALLOWED_DTYPES:
        raise ValueError(f"{what}: dtype {name} is not allowed; use one of {', '.join(ALLOWED_DTYPES)}")
    return name


def check_name(name: Any, what: str) -> str:
    """`name` if it is a valid stream or column name (a Python identifier), else ValueError."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"{what}: name {name!r} must be a Python identifier")
    return name


def telemetry_columns(extra_columns: Mapping[str, Any] | None = None) -> tuple[Column, ...]:
    """The base columns followed by validated extra scalar columns (name -> numpy dtype-like).

    Raises:
        ValueError: an extra column has a bad name, clashes with a base column, or a bad dtype.
    """
    extras = []
    for name, dtype in (extra_columns or {}).items():
        check_name(name, "extra column")
        if name in BASE_COLUMN_NAMES:
            raise ValueError(f"extra column {name!r} clashes with a base telemetry column")
        extras.append(Column(name, canonical_dtype(dtype, f"extra column {name!r}"), unit_from_name(name)))
    return TELEMETRY_COLUMNS + tuple(extras)


@dataclass(frozen=True)
class ArraySpec:
    """One per-frame array stream: each frame contributes one array of `shape` and `dtype`.

    Attributes:
        name: stream name; the store is `<episode>/<name>.zarr`, shape (T, *shape).
        shape: per-frame shape, e.g. (H, W, 3) for frames, (N,) for a hidden state.
        dtype: numpy dtype name (one of ALLOWED_DTYPES).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in meta.json (without the name, which is the key)."""
        return {"shape": list(self.shape), "dtype": self.dtype}


def check_shape(shape: Any, what: str) -> tuple[int, ...]:
    """`shape` as a tuple of positive ints, else ValueError naming `what`."""
    try:
        dims = tuple(shape)
    except TypeError as exc:
        raise ValueError(f"{what}: shape must be a sequence of ints, got {shape!r}") from exc
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in dims):
        raise ValueError(f"{what}: shape must hold positive ints, got {shape!r}")
    return tuple(int(d) for d in dims)


def array_specs(
    image_shape: Any, extra_arrays: Mapping[str, tuple[Any, Any]] | None = None
) -> tuple[ArraySpec, ...]:
    """The frames stream followed by validated extra array streams (name -> (shape, dtype)).

    Raises:
        ValueError: bad image shape (must be (H, W, 3)), bad name, reserved name, shape or dtype.
    """
    shape = check_shape(image_shape, "image_shape")
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"image_shape must be (H, W, 3), got {image_shape!r}")
    specs = [ArraySpec(FRAMES_STREAM, shape, "uint8")]
    for name, spec in (extra_arrays or {}).items():
        check_name(name, "extra array")
        if name == FRAMES_STREAM:
            raise ValueError(f"extra array name {name!r} is reserved for the camera frames")
        try:
            arr_shape, dtype = spec
        except (TypeError, ValueError) as exc:
            raise ValueError(f"extra array {name!r}: expected (shape, dtype), got {spec!r}") from exc
        specs.append(
            ArraySpec(
                name,
                check_shape(arr_shape, f"extra array {name!r}"),
                canonical_dtype(dtype, f"extra array {name!r}"),
            )
        )
    return tuple(specs)


def arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    """The Parquet schema of a telemetry part: one non-null field per column, unit and doc as metadata."""
    return pa.schema(
        [
            pa.field(c.name, pa.from_numpy_dtype(np.dtype(c.dtype)), nullable=False, metadata=_field_meta(c))
            for c in columns
        ]
    )


def _field_meta(column: Column) -> dict[str, str]:
    return {"unit": column.unit, "doc": column.doc}


def check_value(column: Column, value: Any) -> None:
    """Raise ValueError naming the column when `value` is not a scalar of the column's kind.

    bool columns take bool / numpy bool; integer columns take ints in range (not bools, not floats);
    float columns take ints or floats (not bools; NaN is allowed, e.g. for a missing label).
    """
    kind = np.dtype(column.dtype).kind
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if kind == "b":
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"column {column.name!r}: expected a bool, got {type(value).__name__} {value!r}")
        return
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"column {column.name!r}: expected a number ({column.dtype}), got bool {value!r}")
    if kind in "iu":
        if not isinstance(value, (int, np.integer)):
            raise ValueError(
                f"column {column.name!r}: expected an integer ({column.dtype}), "
                f"got {type(value).__name__} {value!r}"
            )
        info = np.iinfo(column.dtype)
        if not info.min <= int(value) <= info.max:
            raise ValueError(f"column {column.name!r}: {value} is out of range for {column.dtype}")
        return
    if not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(
            f"column {column.name!r}: expected a float ({column.dtype}), got {type(value).__name__} {value!r}"
        )
