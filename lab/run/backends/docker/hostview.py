"""A node's kernel tables and files seen from this host, where the engine runs here: its
container's first process is a process of this machine, and ``/proc/PID/net`` and
``/proc/PID/root`` are its network stack and file system. Each look is then a file read,
not an exec through the engine (about 50 ms each, hundreds per run). Used only once the
PID is known to be that container's (its cgroup names the container's id); with a remote
engine, a rootless one, or no access to /proc, every look falls back to a command."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from lab.errors import BackendError
from lab.run.backends.sockets import SocketRow, parse_proc_net


class HostView:
    """Per node, the host's /proc folder of its container's first process, or None."""

    def __init__(self, inspect: Callable[[str], Mapping[str, Any]]) -> None:
        self._inspect = inspect  # node -> the engine's description of its container
        self._roots: dict[str, Path | None] = {}
        self._lock = threading.Lock()

    def proc_dir(self, node: str) -> Path | None:
        with self._lock:
            if node not in self._roots:
                self._roots[node] = self._find(node)
            return self._roots[node]

    def forget(self) -> None:
        with self._lock:
            self._roots.clear()

    def _find(self, node: str) -> Path | None:
        try:
            info = self._inspect(node)
            cid, pid = str(info["Id"]), int(info["State"]["Pid"])
            folder = Path(f"/proc/{pid}")
            if pid > 0 and cid in (folder / "cgroup").read_text():
                return folder
        except (BackendError, OSError, KeyError, TypeError, ValueError):
            pass
        return None

    def sockets(self, node: str, protocol: str) -> list[SocketRow] | None:
        folder = self.proc_dir(node)
        if folder is None:
            return None
        try:
            rows = parse_proc_net((folder / "net" / protocol).read_text())
        except OSError:
            return None
        with contextlib.suppress(FileNotFoundError):
            rows += parse_proc_net((folder / "net" / f"{protocol}6").read_text())
        return rows

    def path(self, node: str, path: PurePosixPath) -> Path | None:
        folder = self.proc_dir(node)
        if folder is None or not path.is_absolute():
            return None
        return folder / "root" / path.relative_to("/")

    def read_pid(self, node: str, pidfile: PurePosixPath, timeout: float) -> int | None:
        """The PID a spawn writes to ``pidfile`` on the node, read here as it appears;
        None when it cannot be read from here (the caller asks the node)."""
        local = self.path(node, pidfile)
        deadline = time.monotonic() + timeout
        while local is not None and time.monotonic() < deadline:
            try:
                text = local.read_text().strip()
            except FileNotFoundError:
                text = ""
            except OSError:
                return None
            if text.isdigit() and local.read_text().endswith("\n"):  # written whole
                return int(text)
            time.sleep(0.005)
        return None
