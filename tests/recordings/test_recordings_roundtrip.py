"""Writer -> reader round trips, and the writer's refusals (bad rows, images, arrays, meta, overwrite)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import zarr

from recordings import TELEMETRY_COLUMNS, Recording, RecordingWriter, validate
from recordings.synthetic import frame_indices, indexed_frame, telemetry_rows
from tests.recordings.episodes import META, SHAPE, write_episode

EXTRA_COLUMNS = {"policy_curvature_1pm": "float32", "lap": "int32", "takeover": bool}
EXTRA_ARRAYS = {"hidden_state": ((19,), "float32"), "saliency": ((3, 4), "uint8")}


def _record_with_extras(path, num_frames, chunk_frames=8):
    rng = np.random.default_rng(1)
    rows, images, hidden, saliency = [], [], [], []
    with RecordingWriter(
        path,
        image_shape=SHAPE,
        meta=META,
        chunk_frames=chunk_frames,
        extra_columns=EXTRA_COLUMNS,
        extra_arrays=EXTRA_ARRAYS,
    ) as writer:
        for i, row in enumerate(telemetry_rows(num_frames)):
            row.update(policy_curvature_1pm=float(rng.normal()), lap=np.int32(i // 10), takeover=i % 3 == 0)
            image = indexed_frame(i)
            arrays = {
                "hidden_state": rng.normal(size=19),  # float64, stored as float32
                "saliency": rng.integers(0, 256, (3, 4), dtype=np.uint8),
            }
            assert writer.append(image, row, arrays) == i
            rows.append(row)
            images.append(image)
            hidden.append(arrays["hidden_state"])
            saliency.append(arrays["saliency"])
    return rows, np.stack(images), np.stack(hidden), np.stack(saliency)


def test_round_trip_is_exact_for_frames_telemetry_extra_columns_and_arrays(tmp_path):
    rows, images, hidden, saliency = _record_with_extras(tmp_path / "ep", 21)
    rec = Recording(tmp_path / "ep")

    assert rec.num_frames == 21 and rec.complete and len(rec) == 21
    assert rec.frames().tobytes() == images.tobytes()
    np.testing.assert_array_equal(rec.array("hidden_state"), hidden.astype(np.float32))
    np.testing.assert_array_equal(rec.array("saliency"), saliency)
    assert rec.array_names == ("hidden_state", "saliency")
    for column in rec.columns:
        expected = np.array([r[column.name] for r in rows]).astype(column.dtype)
        got = rec.telemetry[column.name]
        assert got.dtype == np.dtype(column.dtype), column.name
        np.testing.assert_array_equal(got, expected, err_msg=column.name)
    assert [c.name for c in rec.columns] == [c.name for c in TELEMETRY_COLUMNS] + list(EXTRA_COLUMNS)
    assert rec.columns[-3].unit == "1/m"  # unit taken from the _1pm suffix

    meta = rec.meta
    for key in ("simulator", "track", "condition", "seed", "control_period_s", "config", "extra"):
        assert meta[key] == META[key], key
    assert meta["image_shape"] == list(SHAPE) and meta["num_frames"] == 21 and meta["chunk_frames"] == 8
    assert meta["arrays"] == {
        "hidden_state": {"shape": [19], "dtype": "float32"},
        "saliency": {"shape": [3, 4], "dtype": "uint8"},
    }
    assert validate(tmp_path / "ep").num_chunks == 3


def test_any_window_reads_the_same_frames_as_the_whole(episode_path):
    rec = Recording(episode_path)
    whole = rec.frames()
    assert frame_indices(whole).tolist() == list(range(21))
    for start, stop in [(0, 0), (0, 8), (3, 5), (7, 9), (5, 21), (16, 21), (20, 21), (21, 21)]:
        np.testing.assert_array_equal(rec.frames(start, stop), whole[start:stop])
    with pytest.raises(IndexError):
        rec.frames(15, 22)
    with pytest.raises(IndexError):
        rec.frames(-1, 3)
    with pytest.raises(KeyError, match="no array stream 'hidden'"):
        rec.array("hidden")


@pytest.mark.parametrize("decode_frames", [1, 2, 8])  # sharded in groups of 1 or 2 frames, or plain
def test_round_trip_and_window_reads_for_every_decode_grouping(tmp_path, decode_frames):
    path = write_episode(tmp_path / "ep", 21, decode_frames=decode_frames)
    rec = Recording(path)
    assert frame_indices(rec.frames()).tolist() == list(range(21))
    for start in range(0, 21 - 5):
        assert frame_indices(rec.frames(start, start + 5)).tolist() == list(range(start, start + 5))
    assert validate(path).num_chunks == 3


def test_partial_last_chunk_is_stored_and_parts_hold_whole_chunks(episode_path):
    parts = sorted((episode_path / "telemetry").glob("part-*.parquet"))
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert [pq.ParquetFile(p).metadata.num_rows for p in parts] == [8, 8, 5]
    assert all((episode_path / "frames.zarr" / "c" / str(i) / "0" / "0" / "0").is_file() for i in range(3))
    assert frame_indices(Recording(episode_path).frames(16, 21)).tolist() == [16, 17, 18, 19, 20]


def test_episode_opens_with_common_tools(episode_path):
    table = pads.dataset(episode_path / "telemetry", format="parquet").to_table()
    assert table.num_rows == 21
    np.testing.assert_array_equal(np.sort(table.column("frame").to_numpy()), np.arange(21))
    assert table.schema.field("speed_mps").metadata[b"unit"] == b"m/s"
    assert pq.read_table(episode_path / "telemetry").num_rows == 21
    frames = zarr.open_array(episode_path / "frames.zarr", mode="r")
    assert frames.shape == (21, *SHAPE) and frames.shards == (8, *SHAPE)
    assert frame_indices(frames[:]).tolist() == list(range(21))


def test_pandas_reads_the_telemetry_directory(episode_path):
    pd = pytest.importorskip("pandas")
    frame = pd.read_parquet(episode_path / "telemetry")
    assert len(frame) == 21 and list(frame.columns)[:2] == ["frame", "timestamp_s"]


def test_to_pandas_works_or_says_how_to_get_it(episode_path):
    rec = Recording(episode_path)
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pandas"):
            rec.to_pandas()
    else:
        assert rec.to_pandas()["frame"].tolist() == list(range(21))


def test_an_episode_closed_without_frames_reads_as_empty(tmp_path):
    RecordingWriter(tmp_path / "ep", image_shape=SHAPE, meta=META).close()
    rec = Recording(tmp_path / "ep")
    assert rec.num_frames == 0 and rec.complete
    assert rec.frames().shape == (0, *SHAPE)
    assert validate(tmp_path / "ep").num_frames == 0


def test_an_exception_in_the_drive_keeps_the_frames_but_marks_the_episode_incomplete(tmp_path):
    with pytest.raises(RuntimeError, match="simulator died"):
        with RecordingWriter(tmp_path / "ep", image_shape=SHAPE, meta=META, chunk_frames=4) as writer:
            for i, row in enumerate(telemetry_rows(6)):
                writer.append(indexed_frame(i), row)
            raise RuntimeError("simulator died")
    rec = Recording(tmp_path / "ep")
    assert rec.num_frames == 6 and not rec.complete
    assert "simulator died" in rec.meta["aborted"]
    assert frame_indices(rec.frames()).tolist() == list(range(6))


def test_refuses_to_overwrite_unless_asked_and_never_deletes_foreign_directories(tmp_path, episode_path):
    before = {p: p.read_bytes() for p in episode_path.rglob("*") if p.is_file()}
    with pytest.raises(FileExistsError, match="overwrite=True"):
        RecordingWriter(episode_path, image_shape=SHAPE, meta=META)
    assert {p: p.read_bytes() for p in episode_path.rglob("*") if p.is_file()} == before

    write_episode(episode_path, 3, overwrite=True)
    assert Recording(episode_path).num_frames == 3

    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="thesis.tex"):
        RecordingWriter(foreign, image_shape=SHAPE, meta=META, overwrite=True)
    assert (foreign / "thesis.tex").read_text() == "precious"

    empty = tmp_path / "empty"
    empty.mkdir()
    write_episode(empty, 2)  # an empty directory holds nothing to lose
    assert Recording(empty).num_frames == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("speed_mps"), "missing column 'speed_mps'"),
        (lambda r: r.update(speed_kph=3.0), "unknown column 'speed_kph'"),
        (lambda r: r.update(on_road=1.0), "column 'on_road': expected a bool"),
        (lambda r: r.update(speed_mps=True), "column 'speed_mps': expected a number"),
        (lambda r: r.update(frame=2.0), "column 'frame': expected an integer"),
        (lambda r: r.update(speed_mps="fast"), "column 'speed_mps': expected a float"),
        (lambda r: r.update(frame=0), "column 'frame' must increase: 0 after 0"),
        (lambda r: r.update(timestamp_s=0.0), "column 'timestamp_s' must increase"),
        (lambda r: r.update(timestamp_s=float("nan")), "'timestamp_s' must be finite"),
    ],
)
def test_bad_rows_are_refused_naming_the_column_and_leave_no_trace(tmp_path, change, message):
    rows = telemetry_rows(3)
    with RecordingWriter(tmp_path / "ep", image_shape=SHAPE, meta=META, chunk_frames=2) as writer:
        writer.append(indexed_frame(0), rows[0])
        bad = dict(rows[1])
        change(bad)
        with pytest.raises(ValueError, match=message):
            writer.append(indexed_frame(1), bad)
        assert writer.num_frames == 1
        writer.append(indexed_frame(1), rows[1])
    assert frame_indices(Recording(tmp_path / "ep").frames()).tolist() == [0, 1]


def test_bad_images_and_arrays_are_refused_naming_expected_and_actual(tmp_path):
    row = telemetry_rows(1)[0]
    with RecordingWriter(
        tmp_path / "ep", image_shape=SHAPE, meta=META, extra_arrays={"hidden_state": ((4,), "float32")}
    ) as writer:
        ok = {"hidden_state": np.zeros(4, np.float32)}
        with pytest.raises(
            ValueError, match=r"expected uint8 array of shape \(6, 8, 3\), got float32 \(6, 8, 3\)"
        ):
            writer.append(np.zeros(SHAPE, np.float32), row, ok)
        with pytest.raises(ValueError, match=r"got uint8 \(8, 6, 3\)"):
            writer.append(np.zeros((8, 6, 3), np.uint8), row, ok)
        with pytest.raises(ValueError, match="missing array 'hidden_state'"):
            writer.append(indexed_frame(0), row)
        with pytest.raises(ValueError, match="unknown array 'saliency'"):
            writer.append(indexed_frame(0), row, {**ok, "saliency": np.zeros(2)})
        with pytest.raises(
            ValueError, match=r"array 'hidden_state': expected float32 \(4,\), got float32 \(5,\)"
        ):
            writer.append(indexed_frame(0), row, {"hidden_state": np.zeros(5, np.float32)})
        assert writer.num_frames == 0
    with pytest.raises(ValueError, match=r"array 'sal': expected uint8 \(2,\), got float64"):
        with RecordingWriter(
            tmp_path / "ep2", image_shape=SHAPE, meta=META, extra_arrays={"sal": ((2,), "uint8")}
        ) as writer:
            writer.append(indexed_frame(0), row, {"sal": np.zeros(2)})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"meta": {k: v for k, v in META.items() if k != "track"}}, "missing key 'track'"),
        ({"meta": {**META, "town": "Town01"}}, "unknown key 'town'"),
        ({"meta": {**META, "control_period_s": 0}}, "control_period_s"),
        ({"meta": {**META, "seed": 1.5}}, "'seed' must be an int"),
        ({"meta": {**META, "config": {"f": object()}}}, "not JSON serialisable"),
        ({"image_shape": (6, 8)}, r"image_shape must be \(H, W, 3\)"),
        ({"chunk_frames": 0}, "chunk_frames must be a positive int"),
        ({"chunk_frames": 8, "decode_frames": 3}, "decode_frames must be a positive divisor of 8"),
        ({"extra_columns": {"speed_mps": "float32"}}, "clashes with a base telemetry column"),
        ({"extra_columns": {"note": "str"}}, "extra column 'note'"),
        ({"extra_arrays": {"frames": ((2,), "uint8")}}, "reserved"),
        ({"extra_arrays": {"h": ((0,), "float32")}}, "positive ints"),
    ],
)
def test_bad_declarations_are_refused_before_anything_is_written(tmp_path, kwargs, message):
    args = {"image_shape": SHAPE, "meta": META, **kwargs}
    with pytest.raises((ValueError, TypeError), match=message):
        RecordingWriter(tmp_path / "ep", **args)
    assert not (tmp_path / "ep").exists()


def test_meta_is_written_at_open_and_rewritten_at_close(tmp_path):
    writer = RecordingWriter(tmp_path / "ep", image_shape=SHAPE, meta=META, chunk_frames=4)
    opened = json.loads((tmp_path / "ep" / "meta.json").read_text())
    assert opened["complete"] is False and opened["num_frames"] == 0 and opened["format_version"] == 1
    for i, row in enumerate(telemetry_rows(5)):
        writer.append(indexed_frame(i), row)
    assert writer.num_committed == 4 and writer.num_frames == 5
    writer.close()
    writer.close()  # idempotent
    closed = json.loads((tmp_path / "ep" / "meta.json").read_text())
    assert closed["complete"] is True and closed["num_frames"] == 5
    assert not list((tmp_path / "ep").glob(".*"))  # no temporary files left behind
    with pytest.raises(RuntimeError, match="closed"):
        writer.append(indexed_frame(5), telemetry_rows(6)[5])
