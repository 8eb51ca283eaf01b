"""Interrupted work never claims to be complete: Ctrl-C, SIGTERM or an error mid-drive leaves the episode
marked aborted, and a rerun redoes it into exactly what an uninterrupted run records."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import drive.closed_loop.loop as loop
from drive.cli import main
from drive.closed_loop.record import RecordConfig, record
from recordings.reader import Recording

REPO = Path(__file__).resolve().parents[2]
RECORD_ARGS = ["--minutes", "0.15", "--episodes", "3", "--track", "oval", "--quiet"]
"""3 episodes of 60 frames each (chunks of 64, so an interrupted episode has one partial chunk)."""
LONG_ARGS = ["--minutes", "1.2", "--episodes", "3", "--track", "oval,forest", "--quiet"]
"""3 episodes of 480 frames: ~2 s of recording to interrupt in a subprocess."""


def _digest(path: Path) -> str:
    rec = Recording(path)
    h = hashlib.sha256(rec.frames().tobytes())
    for name, values in sorted(rec.telemetry.items()):
        h.update(name.encode() + np.asarray(values).tobytes())
    return h.hexdigest()


def _digests(out: Path) -> dict[str, str]:
    return {p.name: _digest(p) for p in sorted(out.glob("episode-*"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, str]:
    """Digests of an uninterrupted `drive record` with RECORD_ARGS."""
    out = tmp_path_factory.mktemp("reference") / "rec"
    assert main(["record", "--out", str(out), *RECORD_ARGS]) == 0
    return _digests(out)


@pytest.fixture(scope="module")
def long_reference(tmp_path_factory) -> dict[str, str]:
    """Digests of an uninterrupted `drive record` with LONG_ARGS."""
    out = tmp_path_factory.mktemp("long") / "rec"
    assert main(["record", "--out", str(out), *LONG_ARGS]) == 0
    return _digests(out)


def _interrupt_at(monkeypatch, frame: int, error: type[BaseException]) -> None:
    """Make the closed loop raise `error` when it builds the row of `frame` in the 2nd episode."""
    real_row = loop._row
    seen = {"frame0": 0}

    def row(obs, info, curvature_1pm, noise_variance):
        if obs.frame == 0:
            seen["frame0"] += 1
        if seen["frame0"] == 2 and obs.frame == frame:
            raise error("injected")
        return real_row(obs, info, curvature_1pm, noise_variance)

    monkeypatch.setattr(loop, "_row", row)


@pytest.mark.parametrize(
    ("error", "code"), [(KeyboardInterrupt, 130), (RuntimeError, None), (SystemExit, None)]
)
def test_an_interrupted_record_marks_the_episode_aborted_and_a_rerun_redoes_it(
    tmp_path, monkeypatch, reference, error, code
):
    out = tmp_path / "rec"
    _interrupt_at(monkeypatch, 37, error)
    if code is not None:
        assert main(["record", "--out", str(out), *RECORD_ARGS]) == code
    else:
        with pytest.raises(error):
            main(["record", "--out", str(out), *RECORD_ARGS])
    first, second = Recording(out / "episode-0000"), Recording(out / "episode-0001")
    assert first.complete and first.num_frames == 60
    assert not second.complete and "injected" in second.meta["aborted"]
    assert second.num_frames == 37  # the frames before the interruption, none claimed beyond
    assert not (out / "episode-0002").exists()
    monkeypatch.undo()
    assert main(["record", "--out", str(out), *RECORD_ARGS]) == 0
    assert _digests(out) == reference


def test_an_interrupted_eval_recording_is_aborted_and_a_rerun_redoes_it(tmp_path, monkeypatch):
    args = ["eval", "--policy", "expert", "--seeds", "0", "--max-steps", "30", "--track", "oval"]
    args += ["--record", "--quiet", "--set", "laps=1", "--out"]
    ref = tmp_path / "ref"
    assert main([*args, str(ref)]) == 0
    out = tmp_path / "out"
    real_row = loop._row

    def row(obs, info, curvature_1pm, noise_variance):
        if obs.frame == 12:
            raise KeyboardInterrupt
        return real_row(obs, info, curvature_1pm, noise_variance)

    monkeypatch.setattr(loop, "_row", row)
    assert main([*args, str(out)]) == 130
    (episode,) = (out / "episodes").iterdir()
    assert not Recording(episode).complete and Recording(episode).num_frames == 12
    monkeypatch.undo()
    assert main([*args, str(out)]) == 0
    assert _digests(out / "episodes") == _digests(ref / "episodes")
    assert all(Recording(p).complete for p in (out / "episodes").iterdir())


class _SignalsOnDelete:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # the CLI's handler raises inside __del__: CPython drops it


def test_a_ctrl_c_swallowed_after_the_last_episode_stops_eval_before_metrics(tmp_path, monkeypatch):
    """Found by the Ctrl-C campaign: a signal that lands in a finalizer after the pool's last check (its
    teardown, plotting) was lost, and the run went on to write metrics.json and exit 0."""
    import drive.eval.plots as plots

    real_write_plots = plots.write_plots

    def write_plots(*args, **kwargs):
        _SignalsOnDelete()  # dropped at once: the Ctrl-C is raised and swallowed in its __del__
        return real_write_plots(*args, **kwargs)

    monkeypatch.setattr(plots, "write_plots", write_plots)
    args = ["eval", "--policy", "expert", "--seeds", "0", "--max-steps", "20", "--track", "oval", "--quiet"]
    out = tmp_path / "out"
    assert main([*args, "--out", str(out)]) == 130
    assert (out / "eval.yaml").exists() and not (out / "metrics.json").exists()
    monkeypatch.undo()
    assert main([*args, "--out", str(out)]) == 0
    assert (out / "metrics.json").exists()


def test_a_user_file_inside_an_incomplete_episode_is_never_deleted(tmp_path, monkeypatch):
    out = tmp_path / "rec"
    _interrupt_at(monkeypatch, 5, KeyboardInterrupt)
    config = RecordConfig(tracks=["oval"], episodes=3, minutes=0.15)
    with pytest.raises(KeyboardInterrupt):
        record(config, out, progress=False)
    monkeypatch.undo()
    note = out / "episode-0001" / "telemetry" / "notes.txt"
    note.write_text("mine")
    with pytest.raises(FileExistsError, match=r"episode-0001.*telemetry/notes\.txt"):
        record(config, out, progress=False)
    assert note.read_text() == "mine"


def _spawn_record(out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "drive", "record", "--out", str(out), *LONG_ARGS],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize(
    "attempt", [*range(6), *(pytest.param(i, marks=pytest.mark.slow) for i in range(6, 10))]
)
def test_sigint_or_sigterm_at_a_random_moment_then_rerun_gives_the_uninterrupted_recording(
    tmp_path, long_reference, attempt
):
    rng = np.random.default_rng(attempt)
    sig = (signal.SIGINT, signal.SIGTERM)[attempt % 2]
    out = tmp_path / "rec"
    proc = _spawn_record(out)
    deadline = time.monotonic() + 120
    while not (out / "episode-0000" / "meta.json").exists():  # the recording has started
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "record made no progress"
        time.sleep(0.01)
    time.sleep(float(rng.uniform(0.0, 1.2)))
    proc.send_signal(sig)
    proc.wait(timeout=60)
    err = proc.stderr.read().decode()
    assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], err
    assert "Traceback" not in err
    episodes = sorted(out.glob("episode-*"))
    assert sum(Recording(p).complete for p in episodes) < 3  # the run did not finish, nor say it did
    for path in episodes:
        if Recording(path).complete:  # only an episode driven to its end may say so
            assert _digest(path) == long_reference[path.name]
    assert main(["record", "--out", str(out), *LONG_ARGS]) == 0
    assert _digests(out) == long_reference
