"""A Ctrl-C that lands inside a finalizer (where CPython swallows it) is raised again at the next step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.interrupts import Terminated, check, handle_signals


class _SignalsOnDelete:
    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        os.kill(os.getpid(), self.signum)  # the handler raises here, inside __del__: CPython drops it


@pytest.mark.parametrize("signum, kind", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)])
def test_a_signal_swallowed_in_a_finalizer_is_raised_by_the_next_check_and_not_printed(capfd, signum, kind):
    before = signal.getsignal(signum)
    with handle_signals():
        check()  # nothing pending
        _SignalsOnDelete(signum)  # dropped at once: __del__ runs, the exception raised in it is swallowed
        with pytest.raises(kind):
            check()
    assert "Exception ignored" not in capfd.readouterr().err
    assert signal.getsignal(signum) is before  # the previous handler is back
    check()  # and nothing is pending any more


def test_a_signal_that_propagates_raises_where_it_lands():
    with handle_signals():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs at the next bytecode boundary
                pass


LINGERING_DRIVE = """
import atexit, sys, time
from pathlib import Path
from drive.cli import run

flag = Path(sys.argv.pop(1))

def linger():  # stands for a library's slow atexit callback (e.g. torch's operator-library finalizers)
    flag.touch()
    time.sleep(30)

atexit.register(linger)
sys.argv[1:] = ["sim", "tracks"]
run()
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_shutdown_after_the_work_ends_the_process_without_a_traceback(tmp_path, signum):
    """The `drive` program leaves the default action once its command is done: Ctrl-C during the
    interpreter's shutdown ends it at once, instead of raising in an atexit callback (a traceback)."""
    script, flag = tmp_path / "lingering_drive.py", tmp_path / "shutting-down"
    script.write_text(LINGERING_DRIVE)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.Popen([sys.executable, str(script), str(flag)], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.01)
    os.kill(proc.pid, signum)
    assert proc.wait(timeout=20) == -signum
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert "Traceback" not in err and "Exception ignored" not in err, err
