"""Damaged recordings raise RecordingError naming the file, never another exception, never wrong data."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recordings import Recording, RecordingError, RecordingWriter, validate
from recordings.synthetic import frame_indices, indexed_frame, telemetry_rows
from tests.recordings.episodes import META, SHAPE, write_episode


def _chunk(episode: Path, index: int) -> Path:
    return episode / "frames.zarr" / "c" / str(index) / "0" / "0" / "0"


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path, keep_fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])


@pytest.mark.parametrize("decode_frames", [4, 8])  # sharded and plain chunk files
@pytest.mark.parametrize("damage", ["flip", "flip_index", "truncate", "empty"])
def test_damaged_zarr_chunk_raises_naming_the_chunk_file(tmp_path, damage, decode_frames):
    episode_path = write_episode(tmp_path / "ep", 21, decode_frames=decode_frames)
    chunk = _chunk(episode_path, 1)
    {
        "flip": lambda: _flip_byte(chunk, 40),
        "flip_index": lambda: _flip_byte(chunk, -10),  # a shard's index sits at the end of its file
        "truncate": lambda: _truncate(chunk, 0.5),
        "empty": lambda: _truncate(chunk, 0),
    }[damage]()
    rec = Recording(episode_path)  # telemetry is fine; frames are read on demand
    np.testing.assert_array_equal(frame_indices(rec.frames(0, 8)), np.arange(8))  # chunk 0 still reads
    with pytest.raises(RecordingError, match=str(chunk)):
        rec.frames(6, 10)
    with pytest.raises(RecordingError, match=str(chunk)):
        validate(episode_path)


def test_missing_zarr_chunk_raises_instead_of_reading_zeros(episode_path):
    chunk = _chunk(episode_path, 2)
    chunk.unlink()
    with pytest.raises(RecordingError, match=f"{chunk}: missing chunk 2"):
        Recording(episode_path).frames(15, 20)


def test_damaged_zarr_json_raises_naming_it(episode_path):
    zarr_json = episode_path / "frames.zarr" / "zarr.json"
    _truncate(zarr_json, 0.6)
    with pytest.raises(RecordingError, match=str(zarr_json)):
        Recording(episode_path).frames(0, 1)


def test_zarr_json_that_disagrees_with_meta_raises(episode_path):
    zarr_json = episode_path / "frames.zarr" / "zarr.json"
    meta = json.loads(zarr_json.read_text())
    meta["shape"][0] = 10  # fewer frames than the telemetry commits
    zarr_json.write_text(json.dumps(meta))
    with pytest.raises(RecordingError, match="holds 10 frames but the telemetry commits 21"):
        validate(episode_path)


@pytest.mark.parametrize("keep_fraction", [0.0, 0.5, 0.97])
def test_truncated_parquet_part_raises_naming_it(episode_path, keep_fraction):
    part = episode_path / "telemetry" / "part-00001.parquet"
    _truncate(part, keep_fraction)
    with pytest.raises(RecordingError, match=str(part)):
        Recording(episode_path)


def test_corrupt_parquet_data_page_is_caught_by_its_checksum(episode_path):
    part = episode_path / "telemetry" / "part-00000.parquet"
    _flip_byte(part, 60)  # inside the first column chunk, well before the footer
    with pytest.raises(RecordingError, match=str(part)):
        Recording(episode_path)


def test_missing_middle_part_and_missing_last_part_are_errors(episode_path):
    (episode_path / "telemetry" / "part-00001.parquet").unlink()
    with pytest.raises(RecordingError, match="part-00001.parquet: missing telemetry part"):
        Recording(episode_path)
    (episode_path / "telemetry" / "part-00002.parquet").unlink()
    # meta.json says the episode was closed with 21 frames (3 parts); the first missing one is named
    with pytest.raises(RecordingError, match="part-00001.parquet: missing telemetry part.*21 frames"):
        Recording(episode_path)


def test_part_with_another_schema_raises_naming_it(episode_path):
    part = episode_path / "telemetry" / "part-00002.parquet"
    table = pq.read_table(part)
    table = table.set_column(
        2, "speed_mps", pa.array(table.column("speed_mps").to_numpy().astype(np.float64))
    )
    pq.write_table(table, part)
    with pytest.raises(RecordingError, match=f"{part}: columns .* differ"):
        Recording(episode_path)


def test_non_increasing_timestamps_fail_validation_naming_the_part(episode_path):
    part = episode_path / "telemetry" / "part-00001.parquet"
    table = pq.read_table(part)
    times = table.column("timestamp_s").to_numpy().copy()
    times[3] = times[2]
    table = table.set_column(1, table.schema.field("timestamp_s"), pa.array(times))
    pq.write_table(table, part)
    Recording(episode_path)  # opening does not scan values
    with pytest.raises(RecordingError, match=f"{part}: column 'timestamp_s' does not increase at row 11"):
        validate(episode_path)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.unlink(), "meta.json: missing"),
        (lambda p: _truncate(p, 0.5), "meta.json: not valid JSON"),
        (lambda p: p.write_bytes(b"\xff\xfe{}"), "meta.json: unreadable"),
        (lambda p: p.write_text("[1, 2]"), "meta.json: expected a JSON object"),
        (lambda p: p.write_text(p.read_text().replace('"track"', '"trak"')), "meta.json: 'track'"),
        (
            lambda p: p.write_text(p.read_text().replace('"format_version": 1', '"format_version": 9')),
            "newer",
        ),
    ],
)
def test_damaged_meta_json_raises_naming_it(episode_path, damage, message):
    damage(episode_path / "meta.json")
    with pytest.raises(RecordingError, match=message):
        Recording(episode_path)


def test_missing_episode_or_telemetry_directory(tmp_path, episode_path):
    with pytest.raises(RecordingError, match="not an episode directory"):
        Recording(tmp_path / "nowhere")
    shutil.rmtree(episode_path / "telemetry")
    with pytest.raises(RecordingError, match="telemetry: missing telemetry directory"):
        Recording(episode_path)


# --- property: any damage to any file gives success or RecordingError, nothing else --------------------

_TEMPLATE: dict[str, Path] = {}


def _template() -> Path:
    """A small episode with an extra array stream, written once per test session."""
    if "path" not in _TEMPLATE:
        path = Path(tempfile.mkdtemp(prefix="damage-template-")) / "ep"
        with RecordingWriter(
            path,
            image_shape=SHAPE,
            meta=META,
            chunk_frames=4,
            decode_frames=2,  # sharded files: damage to a shard index must be caught too
            extra_arrays={"hidden": ((3,), "float32")},
        ) as writer:
            for i, row in enumerate(telemetry_rows(10)):
                writer.append(indexed_frame(i), row, {"hidden": np.full(3, i, np.float32)})
        _TEMPLATE["path"] = path
    return _TEMPLATE["path"]


def _files(episode: Path) -> list[Path]:
    return sorted(p.relative_to(episode) for p in episode.rglob("*") if p.is_file())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    file_choice=st.integers(min_value=0, max_value=10_000),
    action=st.sampled_from(["flip", "truncate", "delete", "zero"]),
    offset=st.integers(min_value=0, max_value=100_000),
    fraction=st.floats(min_value=0.0, max_value=1.0),
)
def test_any_damage_is_detected_or_harmless(file_choice, action, offset, fraction):
    template = _template()
    files = _files(template)
    with tempfile.TemporaryDirectory() as tmp:
        episode = Path(tmp) / "ep"
        shutil.copytree(template, episode)
        target = episode / files[file_choice % len(files)]
        size = target.stat().st_size
        if action == "flip" and size:
            _flip_byte(target, offset)
        elif action == "zero" and size:
            data = bytearray(target.read_bytes())
            start = offset % size
            stop = min(size, start + 1 + int(fraction * 16))
            data[start:stop] = bytes(stop - start)
            target.write_bytes(bytes(data))
        elif action == "truncate":
            _truncate(target, fraction)
        elif action == "delete":
            target.unlink()
        try:
            report = validate(episode)
        except RecordingError:
            return
        # Undetected damage must be harmless: what reads back is what was written.
        rec = Recording(episode)
        assert report.num_frames == rec.num_frames == 10
        np.testing.assert_array_equal(frame_indices(rec.frames()), np.arange(10))
        np.testing.assert_array_equal(rec.array("hidden")[:, 0], np.arange(10, dtype=np.float32))
        np.testing.assert_array_equal(rec.telemetry["frame"], np.arange(10))
