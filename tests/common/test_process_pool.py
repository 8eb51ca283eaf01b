"""`WorkerPool`: Ctrl-C to the whole process group reaches only the parent; the running jobs are stopped
inside Python (their `finally` runs), nothing prints a traceback, and results flow as in any pool."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from common.process_pool import WorkerPool, WorkerStopped

REPO = Path(__file__).resolve().parents[2]


def _square(x: int) -> int:
    return x * x


def _fail() -> None:
    raise ValueError("bad job")


def test_results_and_errors_come_back_through_the_futures():
    with WorkerPool(2) as pool:
        futures = [pool.submit(_square, i) for i in range(5)]
        failing = pool.submit(_fail)
        assert [f.result(timeout=60) for f in futures] == [0, 1, 4, 9, 16]
        with pytest.raises(ValueError, match="bad job"):
            failing.result(timeout=60)


SCRIPT = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    from common.process_pool import WorkerPool

    def job(folder, i):
        (folder / f"started-{i}").touch()
        try:
            time.sleep(60)
        finally:
            (folder / f"finally-{i}").touch()

    def on_sigterm(signum, frame):  # as the CLI does: SIGTERM raises in the parent
        raise KeyboardInterrupt

    if __name__ == "__main__":
        signal.signal(signal.SIGTERM, on_sigterm)
        folder = Path(sys.argv[1])
        try:
            with WorkerPool(2) as pool:
                futures = [pool.submit(job, folder, i) for i in range(4)]
                [f.result() for f in futures]
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_process_group_stops_the_jobs_cleanly(tmp_path, sig):
    script = tmp_path / "pool_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)], env=env, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("started-*"))) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, (
            proc.stderr.read().decode() if proc.stderr else ""
        )
        time.sleep(0.02)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=30)  # far below the jobs' 60 s: they were stopped, not waited for
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == 130 and err.strip() == "interrupted", err
    assert sorted(p.name for p in tmp_path.glob("finally-*")) == ["finally-0", "finally-1"]
    assert not (tmp_path / "started-2").exists()  # the jobs not yet started never ran


def test_a_worker_stop_is_a_keyboard_interrupt():
    # The closed loop's abort path treats it as Ctrl-C: a recording closes as aborted.
    assert issubclass(WorkerStopped, KeyboardInterrupt)
