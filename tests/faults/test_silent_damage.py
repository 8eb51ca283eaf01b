"""Silent damage caught: a lost meta.json, swapped chunks or parts with valid checksums, extra or missing
parts are reported by file name; randomly damaged episodes never read back as valid data."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drive.cli import main
from recordings import Recording, RecordingError, RecordingWriter, find_episodes, summarize, validate
from recordings.layout import chunk_file
from recordings.synthetic import frame_indices, indexed_frame, telemetry_rows
from tests.recordings.episodes import META, SHAPE, write_episode


def _swap(a: Path, b: Path) -> None:
    data = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(data)


@pytest.fixture
def two_episodes(tmp_path) -> tuple[Path, Path]:
    root = tmp_path / "rec"
    return write_episode(root / "episode-0000", 21), write_episode(root / "episode-0001", 21, episode=1)


def test_an_episode_that_lost_its_meta_json_is_reported_not_dropped(two_episodes, capsys):
    first, second = two_episodes
    (second / "meta.json").unlink()
    root = first.parent
    assert find_episodes(root) == [first, second]
    assert main(["recordings", "validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {second / 'meta.json'}: missing" in out and "1/2 episodes valid" in out
    summary = summarize(root)
    assert summary.episodes == 1 and [str(p) for p, _ in summary.broken] == [str(second)]


def test_training_data_names_an_episode_without_meta_json(two_episodes):
    from recordings.dataset import WindowDataset

    first, second = two_episodes
    (second / "meta.json").unlink()
    with pytest.raises(RecordingError, match=f"{second / 'meta.json'}: missing"):
        WindowDataset(find_episodes(first.parent), 4, 4)


@pytest.mark.parametrize("decode_frames", [4, 8])  # sharded and plain chunk files
@pytest.mark.parametrize("stream", ["frames", "hidden"])
def test_swapped_chunks_with_valid_checksums_are_caught(tmp_path, decode_frames, stream):
    episode = tmp_path / "ep"
    with RecordingWriter(
        episode,
        image_shape=SHAPE,
        meta=META,
        chunk_frames=8,
        decode_frames=decode_frames,
        extra_arrays={"hidden": ((3,), "float32")},
    ) as writer:
        for i, row in enumerate(telemetry_rows(21)):
            writer.append(indexed_frame(i), row, {"hidden": np.full(3, i, np.float32)})
    ndim = 4 if stream == "frames" else 2
    a, b = chunk_file(episode, stream, ndim, 0), chunk_file(episode, stream, ndim, 1)
    _swap(a, b)
    with pytest.raises(RecordingError, match=rf"{a}: chunk 0 of stream '{stream}' is not the one"):
        validate(episode)
    with pytest.raises(RecordingError, match="swapped"):
        Recording(episode).array(stream, 0, 16)
    _swap(a, b)
    validate(episode)  # put back, it is whole again


def test_renamed_or_swapped_telemetry_parts_are_named(two_episodes):
    episode, _ = two_episodes
    parts = episode / "telemetry"
    _swap(parts / "part-00000.parquet", parts / "part-00001.parquet")
    with pytest.raises(
        RecordingError, match=r"part-00000\.parquet: holds the rows of chunk 1, not of chunk 0"
    ):
        Recording(episode)


def test_extra_and_missing_telemetry_parts_are_named(two_episodes):
    episode, other = two_episodes
    parts = episode / "telemetry"
    shutil.copy(parts / "part-00002.parquet", parts / "part-00003.parquet")
    with pytest.raises(RecordingError, match=r"part-00003\.parquet: extra telemetry part"):
        validate(episode)
    (parts / "part-00003.parquet").unlink()
    (parts / "part-00002.parquet").unlink()  # the last part of a closed episode
    with pytest.raises(RecordingError, match=r"part-00002\.parquet: missing telemetry part"):
        validate(episode)
    # A part of another episode put in place of a lost one: its chunk fingerprints do not match.
    shutil.copy(other / "telemetry" / "part-00002.parquet", parts / "part-00002.parquet")
    with pytest.raises(RecordingError, match=str(episode / "frames.zarr")):
        validate(episode)


# --- property: any damage is reported by the damaged file's name, or reads back exactly ---------------

_TEMPLATE: dict[str, Path] = {}


def _template() -> Path:
    if "path" not in _TEMPLATE:
        path = Path(tempfile.mkdtemp(prefix="faults-template-")) / "episode-0000"
        with RecordingWriter(
            path,
            image_shape=SHAPE,
            meta=META,
            chunk_frames=4,
            decode_frames=2,
            extra_arrays={"hidden": ((3,), "float32")},
        ) as writer:
            for i, row in enumerate(telemetry_rows(10)):
                writer.append(indexed_frame(i), row, {"hidden": np.full(3, i, np.float32)})
        _TEMPLATE["path"] = path
    return _TEMPLATE["path"]


def _damage(
    episode: Path, files: list[Path], choice: int, other: int, action: str, offset: int, fraction: float
):
    """Apply `action` to one file (or two, for swap/copy); returns the damaged files' paths."""
    chosen = files[choice % len(files)]
    target = episode / chosen
    # Swap or copy within one kind: chunk files of one stream, telemetry parts (each checksum-valid).
    peers = [f for f in files if f != chosen and _kind(f) == _kind(chosen)]
    size = target.stat().st_size
    if action == "flip" and size:
        data = bytearray(target.read_bytes())
        data[offset % size] ^= 1 << (offset % 8)
        target.write_bytes(bytes(data))
    elif action == "truncate":
        target.write_bytes(target.read_bytes()[: int(size * fraction)])
    elif action == "delete":
        target.unlink()
    elif action in ("swap", "copy") and peers:
        peer = episode / peers[other % len(peers)]
        if action == "swap":
            _swap(target, peer)
        else:
            shutil.copy(peer, target)
        return [target, peer]
    return [target]


def _kind(relative: Path) -> tuple[str, int, bool]:
    return relative.parts[0], len(relative.parts), relative.name == "zarr.json"


def _kind_files(episode: Path) -> list[Path]:
    return sorted(p.relative_to(episode) for p in episode.rglob("*") if p.is_file())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    choice=st.integers(min_value=0, max_value=10_000),
    other=st.integers(min_value=0, max_value=10_000),
    action=st.sampled_from(["flip", "truncate", "delete", "swap", "copy"]),
    offset=st.integers(min_value=0, max_value=100_000),
    fraction=st.floats(min_value=0.0, max_value=0.99),
)
def test_random_damage_is_reported_by_file_name_or_harmless(choice, other, action, offset, fraction):
    template = _template()
    files = _kind_files(template)
    with tempfile.TemporaryDirectory() as tmp:
        episode = Path(tmp) / "episode-0000"
        shutil.copytree(template, episode)
        damaged = _damage(episode, files, choice, other, action, offset, fraction)
        assert find_episodes(tmp) == [episode]  # a damaged episode never drops out of the listing
        try:
            report = validate(episode)
        except RecordingError as err:
            # Named: the damaged file itself, or (for a damaged listing) the directory holding it.
            assert any(str(p) in str(err) or str(p.parent) in str(err) for p in damaged), (err, damaged)
            return
        rec = Recording(episode)  # undetected: must read back exactly what was written
        assert report.num_frames == rec.num_frames == 10 and rec.complete
        np.testing.assert_array_equal(frame_indices(rec.frames()), np.arange(10))
        np.testing.assert_array_equal(rec.array("hidden")[:, 0], np.arange(10, dtype=np.float32))
        np.testing.assert_array_equal(rec.telemetry["frame"], np.arange(10))
