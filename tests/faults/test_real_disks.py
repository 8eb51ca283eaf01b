"""A read-only and a full file system for real (small tmpfs mounts), not simulated: one clean error line,
what was written before stays valid, and after space is freed a rerun finishes the work exactly.

Mounting needs root (CAP_SYS_ADMIN); elsewhere these tests skip, and tests/faults/test_clean_errors.py
simulates the same faults with ENOSPC / EROFS raised in the writer.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from drive.cli import main
from recordings.reader import Recording
from tests.faults.test_interrupted import _digests

RECORD = ["record", "--episodes", "3", "--minutes", "0.15", "--track", "oval", "--quiet"]


def _mount(point: Path, options: str) -> Iterator[Path]:
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


@pytest.fixture
def read_only(tmp_path) -> Iterator[Path]:
    yield from _mount(tmp_path / "ro", "ro,size=1m")


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    yield from _mount(tmp_path / "small", "size=600k")  # an episode is ~390 kB: the 2nd one fills it


def _one_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def test_recording_onto_a_read_only_disk_is_one_line(read_only, capsys):
    assert main([*RECORD, "--out", str(read_only / "rec")]) == 2
    _one_line(capsys, "drive record: error:", "Read-only file system", str(read_only / "rec"))


def test_training_onto_a_read_only_disk_is_one_line_before_any_step(read_only, tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["record", "--episodes", "2", *RECORD[3:], "--out", str(data)]) == 0
    capsys.readouterr()
    argv = ["train", "--data", str(data), "--set", "batch=2", "--out", str(read_only / "run")]
    assert main(argv) == 2
    _one_line(capsys, "drive train: error:", "Read-only file system")


def test_a_disk_that_fills_mid_recording_keeps_what_was_written_and_a_rerun_finishes(
    small_disk, tmp_path, capsys
):
    reference = tmp_path / "reference"
    assert main([*RECORD, "--out", str(reference)]) == 0
    capsys.readouterr()
    out = small_disk / "rec"
    assert main([*RECORD, "--out", str(out)]) == 2
    _one_line(capsys, "drive record: error:", "No space left on device")
    *finished, cut = sorted(out.glob("episode-*"))
    assert finished and all(Recording(p).complete for p in finished)  # intact: the same as the reference's
    assert all(_digests(out)[p.name] == _digests(reference)[p.name] for p in finished)
    assert not Recording(cut).complete  # the episode the disk cut short does not claim to be complete
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)  # space freed
    assert main([*RECORD, "--out", str(out)]) == 0
    assert _digests(out) == _digests(reference)
