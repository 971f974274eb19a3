"""A connected host of a run: the command lines run on it, and its background processes."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from lab.errors import BackendError
from lab.run.backends.base import Proc
from lab.run.backends.ssh import remote
from lab.run.backends.ssh.conn import Host
from lab.run.backends.ssh.state import HostState

MARK = "SOCKET_LAB_RUN"  # environment marker of every process of a run
# ... and of its node: two nodes may be one machine, and a node's teardown must spare
# the processes of a node that could not be reached (they are reported, not guessed at).
NODE_MARK = "SOCKET_LAB_NODE"
TAG = "SOCKET_LAB_TAG"  # environment marker of one foreground command
PYTHON = "python3"  # argv[0] that stands for the node's own interpreter
LAUNCHER = "socket_lab_launch.py"  # remote.LAUNCH, uploaded into lib/


class RemoteNode:
    """A connected host of a run: builds the command lines that run on it."""

    def __init__(self, run_id: str, state: HostState, host: Host) -> None:
        self.run_id = run_id
        self.state = state
        self.host = host
        self.ifaces: dict[str, str] = {}

    @property
    def root(self) -> PurePosixPath:
        if self.state.root is None:
            raise BackendError(f"node {self.state.node}: the lab is not up")
        return PurePosixPath(self.state.root)

    def command(
        self, argv: Sequence[str], *, cwd: PurePosixPath | None = None, env: Sequence[str] = ()
    ) -> str:
        """The shell line for ``argv``: every word quoted, nothing from a value unquoted."""
        if not argv:
            raise BackendError("empty command")
        words = self.interpreted(argv)
        prefix = ["sudo", "-n", "--"] if self.state.sudo else []
        if env:
            prefix += ["env", *env]
        line = "exec " + " ".join(shlex.quote(w) for w in [*prefix, *words])
        return f"cd {shlex.quote(str(cwd))} && {line}" if cwd is not None else line

    def interpreted(self, argv: Sequence[str]) -> list[str]:
        """``argv`` with PYTHON as the host's interpreter: its real path once known, so
        that a version manager's shim (pyenv) is not started again for every command."""
        words = list(argv)
        if words and words[0] == PYTHON:
            words[0] = self.state.python or self.state.target.python
        return words

    def lab_env(self, *extra: str) -> list[str]:
        return [
            f"{MARK}={self.run_id}",
            self.node_marker(),
            f"PYTHONPATH={self.root / 'lib'}",
            *extra,
        ]

    def node_marker(self) -> str:
        return f"{NODE_MARK}={self.run_id}-{self.state.node}"

    def check(self, argv: Sequence[str], what: str, *, timeout: float = 30.0) -> str:
        """Run a helper; its stdout, or a BackendError naming the node and ``what``."""
        done = self.host.execute(self.command(argv), timeout=timeout)
        if done is None:
            raise BackendError(f"node {self.state.node}: {what} did not finish in {timeout:g} s")
        code, out, err = done
        if code != 0:
            text = (err or out).decode(errors="replace").strip()[-500:]
            raise BackendError(f"node {self.state.node}: {what} failed ({code}): {text}")
        return out.decode(errors="replace")

    def reap(self, marker: str, root: str) -> dict[str, Any]:
        pairs = [f"{pid}:{start}" for pid, start in self.state.procs]
        argv = [PYTHON, "-c", remote.REAP, marker, root, *pairs]
        result: dict[str, Any] = json.loads(self.check(argv, "stopping the run's processes"))
        return result


class SshProc(Proc):
    """A background process on a host, known by PID and start time; a monitor on the
    host keeps its exit status in the run's temp dir."""

    def __init__(
        self, r: RemoteNode, node: str, argv: Sequence[str], pid: int, start: str, status: str
    ) -> None:
        self._r = r
        self.node = node
        self.argv = tuple(argv)
        self._pid = pid
        self._start = start
        self._status = status
        self._exit: int | None = None

    @property
    def pid(self) -> int:
        return self._pid

    def _poll(self) -> int | None:
        """Read over SFTP, no command: the status file its monitor writes when it ends,
        else whether ``/proc/PID`` is still this process. Once ended, its status is
        waited for briefly; none means its monitor was killed with it (teardown, clean)."""
        if self._exit is not None:
            return self._exit
        host = self._r.host
        deadline = time.monotonic() + 1.0
        while True:
            text = host.read_file(self._status)
            if text is not None and text.strip():
                self._exit = int(text.strip())
                return self._exit
            if remote.alive_in_stat(host.read_file(f"/proc/{self._pid}/stat"), self._start):
                return None
            if time.monotonic() > deadline:
                self._exit = -9
                return self._exit
            time.sleep(0.01)

    def running(self) -> bool:
        return self._poll() is None

    def reaped(self) -> None:
        """Teardown stopped it (SIGTERM, then SIGKILL if need be) and saw it gone."""
        if self._exit is None:
            self._exit = -9

    def signal(self, signum: int) -> None:
        if self._exit is not None:
            return
        argv = [PYTHON, "-c", remote.SIGNAL, str(self._pid), self._start, str(int(signum))]
        self._r.check(argv, f"signalling process {self._pid}")

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + max(timeout, 0)
        interval = 0.02
        while True:
            status = self._poll()
            if status is not None or time.monotonic() >= deadline:
                return status
            time.sleep(min(interval, max(deadline - time.monotonic(), 0)))
            interval = min(interval * 1.5, 0.25)
