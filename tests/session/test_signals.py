"""A signal whose exception Python drops still ends the run as interrupted.

Python runs a signal handler between bytecodes of the main thread; when that happens inside
a ``__del__`` or a weakref callback, the handler's exception is printed as "Exception
ignored" and lost. The session remembers the signal, so the next step (or the end of the
run) raises it anyway.
"""

from __future__ import annotations

import gc
import os
import signal
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lab.errors import Interrupted
from lab.run.backends import backend_class
from lab.run.session import Session
from lab.spec.model import Interface, Network, Node, Topology

# The SIGINT's exception is lost on purpose; pytest reports such losses as a warning.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

TOPOLOGY = Topology(
    "signals",
    (Network("lan", IPv4Network("10.77.198.0/24")),),
    (Node("a", (Interface("lan", IPv4Address("10.77.198.10")),)),),
)


class _SignalsOnCollect:
    """Sends SIGINT to this process from ``__del__``, where a raised exception is lost."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)


def _lose_a_sigint() -> None:
    obj = _SignalsOnCollect()
    del obj
    gc.collect()


def test_lost_sigint_is_raised_at_the_next_step(root: None, tmp_path: Path) -> None:
    session = Session(TOPOLOGY, backend_class("netns"), tmp_path / "out")
    with pytest.raises(Interrupted) as info, session:
        _lose_a_sigint()  # the handler's exception vanishes here...
        session.check_signal()  # ...and is raised here
        pytest.fail("the lost SIGINT was not raised")
    assert info.value.signum == signal.SIGINT


def test_lost_sigint_ends_a_run_that_otherwise_completed(root: None, tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where a script started us in the background
    session = Session(TOPOLOGY, backend_class("netns"), tmp_path / "out")
    with pytest.raises(Interrupted), session:
        _lose_a_sigint()
    assert signal.getsignal(signal.SIGINT) is before


def test_without_a_signal_the_session_ends_quietly(root: None, tmp_path: Path) -> None:
    session = Session(TOPOLOGY, backend_class("netns"), tmp_path / "out")
    with session:
        session.check_signal()
    assert session.pending_signal is None
