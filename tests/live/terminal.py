"""A command on a real pseudo-terminal, driven as a user types: write keys, wait for text."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import sys
import time

from tests.labcli import ROOT


class Terminal:
    """``lab ARGS`` (this interpreter) with a pty as its controlling terminal."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lab.cli", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=ROOT,
            env={**os.environ, **env, "TERM": "dumb"},
            start_new_session=True,  # a session of its own, with the pty as its terminal
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        self.seen = ""

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def expect(self, text: str, timeout: float = 30.0) -> str:
        """Read until ``text`` has appeared since the last expect; what was read up to it.
        Fails (with what was seen) after ``timeout`` seconds, a bound and not a measure."""
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not seen within {timeout} s; seen: {self.seen!r}")
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the other side closed
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"EOF before {text!r}; seen: {self.seen!r}")
                self.seen += chunk.decode(errors="replace")
        head, _, self.seen = self.seen.partition(text)
        return head

    def wait(self, timeout: float = 60.0) -> int:
        """Drain the terminal until the command exits; its exit status."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                with contextlib.suppress(OSError):
                    self.seen += os.read(self.master, 4096).decode(errors="replace")
        return self.proc.wait(timeout=1)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        with contextlib.suppress(OSError):
            os.close(self.master)


def _take_terminal() -> None:
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def up_at_terminal(*args: str, env: dict[str, str], timeout: float = 30.0) -> None:
    """``lab up ARGS`` at a terminal, as a user types it: it prints the table of nodes and
    how to get in, then exits 0 and gives the prompt back with the lab left up."""
    term = Terminal("up", *args, env=env)
    try:
        term.expect("get in:", timeout=timeout)
        assert term.wait(max(timeout, 60.0)) == 0, term.seen
    finally:
        term.close()
