"""Telemetry parts: one Parquet file per chunk, written atomically; together they are one table.

Part `k` holds the rows of chunk `k` (every part but the last exactly `chunk_frames` rows). Parts carry
page checksums (verified on read) and the unit and doc of every column as Arrow field metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recordings.layout import RecordingError, list_parts, part_name
from recordings.schema import Column, arrow_schema

CHUNK_INDEX_KEY = b"liquid_drive.chunk_index"
FINGERPRINTS_KEY = b"liquid_drive.chunk_fingerprints"
"""Parquet key-value metadata of a part: its chunk index, and stream name -> chunk fingerprint (JSON)."""


def write_part(
    telemetry_dir: Path,
    index: int,
    columns: tuple[Column, ...],
    values: dict[str, np.ndarray],
    fingerprints: dict[str, int] | None = None,
) -> Path:
    """Write part `index` from equal-length column arrays, through a dot-prefixed temporary file.

    The rename is the commit of the chunk: it must happen after the chunk's frames and arrays are stored.
    The part records its own index and the fingerprint of each stream's chunk file
    (`recordings.streams.Stream.fingerprint`), so renamed parts and swapped chunk files are caught.

    Returns:
        The path of the committed part.
    """
    schema = arrow_schema(columns)
    schema = schema.with_metadata(
        {
            **(schema.metadata or {}),
            CHUNK_INDEX_KEY: str(index).encode(),
            FINGERPRINTS_KEY: json.dumps(fingerprints or {}).encode(),
        }
    )
    table = pa.Table.from_arrays(
        [pa.array(values[c.name], type=schema.field(c.name).type) for c in columns], schema=schema
    )
    path = telemetry_dir / part_name(index)
    tmp = telemetry_dir / f".{path.name}.tmp"
    pq.write_table(table, tmp, compression="zstd", write_page_checksum=True)
    os.replace(tmp, path)
    return path


def count_rows(
    telemetry_dir: Path, chunk_frames: int, fingerprints: dict[int, dict[str, int]] | None = None
) -> list[tuple[Path, int]]:
    """The committed parts and their row counts, from the Parquet footers only.

    Args:
        telemetry_dir: the episode's telemetry directory.
        chunk_frames: rows of every part but the last.
        fingerprints: if given, filled with chunk index -> {stream: fingerprint} from the parts that
            record them (parts written before fingerprints existed record none).

    Raises:
        RecordingError: naming the file, when a part is missing from the sequence, unreadable, holds
            the wrong number of rows (every part but the last must hold exactly `chunk_frames`), or
            records another chunk index than its name (renamed or swapped).
    """
    parts = list_parts(telemetry_dir)
    counts = []
    for expected, (index, path) in enumerate(parts):
        if index != expected:
            raise RecordingError(f"{telemetry_dir / part_name(expected)}: missing telemetry part")
        try:
            footer = pq.ParquetFile(path).metadata
            rows = footer.num_rows
            stored = footer.metadata or {}
            recorded = json.loads(stored[FINGERPRINTS_KEY]) if FINGERPRINTS_KEY in stored else {}
        except Exception as exc:  # pyarrow raises ArrowInvalid/OSError/... for a damaged footer
            raise RecordingError(f"{path}: unreadable Parquet part: {type(exc).__name__}: {exc}") from exc
        if CHUNK_INDEX_KEY in stored and stored[CHUNK_INDEX_KEY] != str(index).encode():
            raise RecordingError(
                f"{path}: holds the rows of chunk {stored[CHUNK_INDEX_KEY].decode(errors='replace')}, "
                f"not of chunk {index} (telemetry parts renamed or swapped)"
            )
        if fingerprints is not None and recorded:
            fingerprints[index] = recorded
        last = expected == len(parts) - 1
        if rows > chunk_frames or rows < 1 or (not last and rows != chunk_frames):
            raise RecordingError(
                f"{path}: holds {rows} rows; expected {chunk_frames}" + (" or fewer" if last else "")
            )
        counts.append((path, rows))
    return counts


def read_parts(parts: list[tuple[Path, int]], columns: tuple[Column, ...]) -> dict[str, np.ndarray]:
    """Read and concatenate the parts into one numpy array per column, (T,) of the column's dtype.

    Raises:
        RecordingError: naming the part that is corrupt or whose schema differs from `columns`.
    """
    pieces: dict[str, list[np.ndarray]] = {c.name: [] for c in columns}
    expected = arrow_schema(columns)
    for path, rows in parts:
        try:
            table = pq.ParquetFile(path, page_checksum_verification=True).read(use_threads=False)
        except Exception as exc:
            raise RecordingError(f"{path}: corrupt Parquet part: {type(exc).__name__}: {exc}") from exc
        if table.schema.names != expected.names or table.schema.types != expected.types:
            raise RecordingError(
                f"{path}: columns {_describe(table.schema)} differ from the declared {_describe(expected)}"
            )
        if table.num_rows != rows:
            raise RecordingError(f"{path}: footer says {rows} rows, data holds {table.num_rows}")
        for c in columns:
            column = table.column(c.name)
            if column.null_count:
                raise RecordingError(f"{path}: column {c.name!r} holds nulls")
            pieces[c.name].append(column.to_numpy().astype(c.dtype, copy=False))
    return {
        c.name: np.concatenate(pieces[c.name]) if pieces[c.name] else np.zeros(0, c.dtype) for c in columns
    }


def _describe(schema: pa.Schema) -> str:
    return "[" + ", ".join(f"{f.name}: {f.type}" for f in schema) + "]"
