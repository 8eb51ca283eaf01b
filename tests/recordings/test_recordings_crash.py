"""A recorder killed with SIGKILL loses at most its last chunk; everything committed reads back intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest

from recordings import Recording, validate
from recordings.synthetic import frame_indices

ROOT = Path(__file__).resolve().parents[2]
CHUNK = 16
SHAPE = (48, 64, 3)

# Appends frames forever (or pauses with a half-full buffer in "pause" mode), printing the count after
# each append, so the parent knows how many frames were handed to the writer when it killed it.
CHILD = f"""
import sys, time
import numpy as np
import pyarrow.dataset as pads
from recordings.writer import RecordingWriter
from recordings.synthetic import indexed_frame, telemetry_rows

path, mode = sys.argv[1], sys.argv[2]
meta = {{"simulator": "embedded", "track": "oval", "control_period_s": 0.05}}
writer = RecordingWriter(path, image_shape={SHAPE}, meta=meta, chunk_frames={CHUNK},
                         extra_arrays={{"hidden_state": ((5,), "float32")}})
i = 0
while True:
    row = telemetry_rows(1, first_frame=i)[0]
    writer.append(indexed_frame(i, 0, {SHAPE}), row, {{"hidden_state": np.full(5, i, np.float32)}})
    i += 1
    print(i, flush=True)
    if mode == "pause" and i == 3 * {CHUNK} + {CHUNK} // 2:
        print("paused", flush=True)
        time.sleep(120)
"""


def _spawn(path: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), mode], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )


class _LastLine:
    """Reads the child's stdout in a thread, remembering the last line."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.last = ""
        self.thread = threading.Thread(target=self._run, args=(proc,), daemon=True)
        self.thread.start()

    def _run(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.last = line.strip()


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def _assert_intact(path: Path, committed: int) -> None:
    rec = Recording(path)
    assert rec.num_frames == committed and not rec.complete
    ids = np.arange(committed)
    np.testing.assert_array_equal(frame_indices(rec.frames()), ids)
    np.testing.assert_array_equal(rec.array("hidden_state")[:, 0], ids.astype(np.float32))
    np.testing.assert_array_equal(rec.telemetry["frame"], ids)
    report = validate(path)  # reads and checksums every committed chunk
    assert report.num_frames == committed and not report.complete
    # A temporary part left by a kill mid-write is invisible to the reader and to pyarrow.
    (path / "telemetry" / f".part-{committed // CHUNK:05d}.parquet.tmp").write_bytes(b"PAR1 torn")
    assert Recording(path).num_frames == committed
    assert pads.dataset(path / "telemetry", format="parquet").count_rows() == committed


def _wait_for(predicate, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"writer exited early with {proc.returncode}")
        if time.monotonic() > deadline:
            _kill(proc)
            pytest.fail("writer made no progress")
        time.sleep(0.001)


def test_kill_with_a_half_full_buffer_loses_exactly_the_unflushed_frames(tmp_path):
    path = tmp_path / "ep"
    proc = _spawn(path, "pause")
    reader = _LastLine(proc)
    _wait_for(lambda: reader.last == "paused", proc)
    _kill(proc)
    _assert_intact(path, 3 * CHUNK)  # 3.5 chunks appended, 3 committed


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kill_at_a_random_moment_loses_at_most_the_last_chunk(tmp_path, seed):
    path = tmp_path / "ep"
    rng = np.random.default_rng(seed)
    parts_needed = int(rng.integers(2, 5))
    proc = _spawn(path, "forever")
    reader = _LastLine(proc)
    telemetry = path / "telemetry"
    _wait_for(lambda: telemetry.is_dir() and len(list(telemetry.glob("part-*"))) >= parts_needed, proc)
    time.sleep(float(rng.uniform(0.0, 0.02)))
    _kill(proc)
    reader.thread.join(timeout=10)
    printed = int(reader.last)  # the child had appended `printed` or `printed + 1` frames

    committed = Recording(path).num_frames
    assert committed % CHUNK == 0 and committed >= 2 * CHUNK
    assert printed + 1 - CHUNK <= committed <= printed + 1
    _assert_intact(path, committed)
