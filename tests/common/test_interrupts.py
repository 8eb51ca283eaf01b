"""A Ctrl-C that lands inside a finalizer (where CPython swallows it) is raised again at the next step."""

from __future__ import annotations

import os
import signal

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
