"""Commands on a node: an attached exec's output streams, and background processes."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

import docker
import docker.errors

from lab.errors import BackendError
from lab.run.backends.base import Backend, Proc
from lab.run.backends.docker.engine import ENGINE_ERRORS

# The spawn wrapper: positional parameters are the pidfile, the log, then the command.
# No value is ever pasted into this text.
SPAWN_SCRIPT = 'echo $$ > "$1"; log=$2; shift 2; exec "$@" > "$log" 2>&1'
# Waits (inside the node) for a spawn's pidfile and prints it.
READ_PID_SCRIPT = 'while [ ! -s "$1" ]; do sleep 0.01; done; cat "$1"'


def exit_status(code: int) -> int:
    """An engine exit code as the contract's status: 128+N (killed by signal N) is -N."""
    if 128 < code < 128 + 65:
        return -(code - 128)
    return code


def read_exactly(raw: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = raw.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def read_streams(raw: socket.socket) -> tuple[bytes, bytes]:
    """Read an attached exec's output to its end. Without a tty the engine sends frames:
    8 header bytes (stream 1 = stdout, 2 = stderr; then the length, big-endian) + data."""
    out, err = bytearray(), bytearray()
    while True:
        header = read_exactly(raw, 8)
        if len(header) < 8:
            return bytes(out), bytes(err)
        size = int.from_bytes(header[4:8], "big")
        payload = read_exactly(raw, size)
        (err if header[0] == 2 else out).extend(payload)


def talk(sock: Any, data: str | None, limit: float) -> tuple[bytes, bytes]:
    """Write ``data`` to an attached exec's stdin, close it, read stdout and stderr."""
    raw: socket.socket = getattr(sock, "_sock", sock)  # the SDK wraps it in a SocketIO
    raw.settimeout(limit)
    try:
        if data is not None:
            raw.sendall(data.encode())
        # A TLS socket cannot be half-closed: its shutdown drops the TLS layer, and the
        # output would be read as raw records. Without stdin there is nothing to end.
        if data is not None or not isinstance(raw, ssl.SSLSocket):
            with suppress(OSError):
                raw.shutdown(socket.SHUT_WR)
        return read_streams(raw)
    finally:
        sock.close()


class DockerProc(Proc):
    """A command started by ``docker exec`` in the background.

    ``backend`` runs the ``kill`` that signals it; ``api`` inspects its exec.
    """

    def __init__(
        self,
        backend: Backend,
        api: docker.APIClient,
        node: str,
        argv: Sequence[str],
        exec_id: str,
        pid: int,
    ) -> None:
        self._backend = backend
        self._api = api
        self._exec_id = exec_id
        self._pid = pid
        self.node = node
        self.argv = tuple(argv)

    @property
    def pid(self) -> int:
        return self._pid

    def _state(self) -> tuple[bool, int | None]:
        try:
            info = self._api.exec_inspect(self._exec_id)
        except docker.errors.NotFound:
            # The container has gone (torn down), and the process with it.
            return False, 128 + 9
        except ENGINE_ERRORS as exc:
            raise BackendError(f"docker: inspecting a process on {self.node}: {exc}") from exc
        code = info.get("ExitCode")
        return bool(info.get("Running")), None if code is None else int(code)

    def running(self) -> bool:
        return self._state()[0]

    def signal(self, signum: int) -> None:
        if not self.running():
            return
        # Exits non-zero if the process ended meanwhile, which the contract allows.
        self._backend.run(self.node, ["kill", f"-{int(signum)}", str(self._pid)], timeout=10)

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while True:
            running, code = self._state()
            if not running:
                return exit_status(code if code is not None else 0)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
