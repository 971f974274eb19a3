"""Processes on nodes: started by ``ip netns exec``, which exec()s the program."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from lab.run.backends.base import Proc

EXEC_WAIT = 5.0  # seconds spawn() waits for `ip netns exec` to become the program


class NetnsProc(Proc):
    """A process started by ``ip netns exec``; it exec()s the program, so the PID is its."""

    def __init__(self, node: str, argv: Sequence[str], popen: subprocess.Popen[bytes]) -> None:
        self.node = node
        self.argv = tuple(argv)
        self._popen = popen

    @property
    def pid(self) -> int:
        return self._popen.pid

    def running(self) -> bool:
        return self._popen.poll() is None

    def signal(self, signum: int) -> None:
        # Popen.send_signal does nothing once the process has been reaped, so a
        # recycled PID is never signalled.
        with contextlib.suppress(ProcessLookupError):
            self._popen.send_signal(signum)

    def wait(self, timeout: float) -> int | None:
        timeout = max(timeout, 0)
        if not _ended_within(self._popen, timeout):
            return self._popen.poll()
        try:
            return self._popen.wait(timeout=EXEC_WAIT)  # it has ended: reaped at once
        except subprocess.TimeoutExpired:
            return None


def _ended_within(popen: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether the child has ended, or ends within ``timeout`` seconds: told by the kernel
    through a pidfd the moment it does. Popen.wait polls instead, backing off to 50 ms
    between looks (a server that took 35 ms to stop was seen after 64); it is what is
    left where there are no pidfds."""
    if popen.poll() is not None:
        return True
    try:
        fd = os.pidfd_open(popen.pid)
    except (OSError, AttributeError):
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        # Still not reaped after the pidfd was made: the PID was this child's all along.
        if popen.poll() is not None:
            return True
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    return bool(ready)


def wait_for_exec(popen: subprocess.Popen[bytes], full: Sequence[str] | None, netns: Path) -> None:
    """Return once the PID is the program (or the program ended).

    For a moment after Popen the PID is still ``ip netns exec`` (``full``), or, started
    straight in the namespace (``full`` None), this process's copy still in exec(): a
    caller that signals it, or looks for it in ``ps``, must meet the program itself. Done
    means: in the namespace bound at ``netns``, with a command line of its own.
    """
    try:
        target = os.stat(netns)
    except OSError:
        return
    if full is None:
        with open("/proc/self/cmdline", "rb") as f:
            wrapper = f.read()
    else:
        wrapper = "\0".join(full).encode() + b"\0"
    deadline = time.monotonic() + EXEC_WAIT
    while popen.poll() is None and time.monotonic() < deadline:
        try:
            st = os.stat(f"/proc/{popen.pid}/ns/net")
            with open(f"/proc/{popen.pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            return
        # Empty: half-way through exec(), the new image's arguments not yet in place.
        mine = cmdline and cmdline != wrapper
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino) and mine:
            return
        time.sleep(0.001)


def kill_group(proc: subprocess.Popen[str]) -> None:
    """Kill a command started in its own session, with all its children; reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
