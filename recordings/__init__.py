"""The on-disk format of recorded drives: writer, reader, validation, catalog (dataset: recordings.dataset).

An episode directory holds `meta.json`, `frames.zarr` (zarr v3, (T, H, W, 3) uint8), optional extra
`<name>.zarr` per-frame arrays, and `telemetry/part-*.parquet` (one Parquet file per chunk; together one
table). See `recordings.layout` for the layout and its crash-safety rule, `recordings.schema` for the
columns. `recordings.dataset` (imports torch) holds the training windows.
"""

from recordings.catalog import RecordingsSummary, find_episodes, summarize
from recordings.layout import FORMAT_VERSION, RecordingError
from recordings.reader import Recording, open_recording
from recordings.schema import TELEMETRY_COLUMNS, Column
from recordings.validate import ValidationReport, validate
from recordings.writer import RecordingWriter

__all__ = [
    "FORMAT_VERSION",
    "TELEMETRY_COLUMNS",
    "Column",
    "Recording",
    "RecordingError",
    "RecordingWriter",
    "RecordingsSummary",
    "ValidationReport",
    "find_episodes",
    "open_recording",
    "summarize",
    "validate",
]
