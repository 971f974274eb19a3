"""The lab's end of a node's agent (``lab.programs.agent``): one attached exec per container,
kept open for the run, through which the foreground commands go.

An exec through the engine's API costs three requests and a process started by the
container runtime, 100-300 ms on a busy machine; a lab's run makes about 80 of them
(snapshots, the looks for listening services and held connections, clients). Through the
agent a command is a fork in the node. The agent is used where the engine is this
machine's (its Unix socket): a TLS stream cannot be half-closed and an SSH one is
untested here, and those engines keep an exec per command.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from contextlib import suppress
from typing import Any

import docker

from lab.errors import BackendError, CommandTimeout
from lab.run.backends.base import Backend, Completed
from lab.run.backends.docker.proc import DockerProc, read_exactly

STDOUT = 1


class AgentGone(Exception):
    """The agent's stream ended (its container stopped, or it could not start)."""


class AgentTimeout(Exception):
    """The command ran past its timeout; the agent stopped it."""


class Agent:
    """A running agent in one container: ``run`` sends a command and waits for its end."""

    def __init__(self, api: docker.APIClient, container: str, python: str) -> None:
        argv = [python, "-S", "-m", "lab.programs.agent"]
        exec_id = api.exec_create(container, argv, stdin=True, stdout=True, stderr=True)["Id"]
        sock: Any = api.exec_start(exec_id, socket=True)
        self._sock = sock
        self._raw: socket.socket = getattr(sock, "_sock", sock)
        self._raw.settimeout(None)  # idle between commands for as long as the run lasts
        self._lock = threading.Lock()
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._next = 0
        self._gone = ""
        self._reader = threading.Thread(target=self._read, name=f"agent-{container}", daemon=True)
        self._reader.start()

    def run(
        self, argv: list[str], timeout: float, data: str | None, wait: float
    ) -> tuple[int, str, str]:
        """Exit status, stdout and stderr of ``argv``; AgentTimeout past ``timeout``;
        AgentGone if the stream ends first, or nothing comes back within ``wait``."""
        reply = self._ask({"argv": argv, "input": data, "timeout": timeout}, wait)
        if reply.get("timeout"):
            raise AgentTimeout()
        if "error" in reply:
            return 127, "", f"{reply['error']}\n"
        return int(reply["rc"]), str(reply["out"]), str(reply["err"])

    def spawn(self, argv: Sequence[str], log: str, wait: float) -> int | str:
        """Start ``argv`` in the background, its output into ``log``: its pid, or why it
        could not start."""
        reply = self._ask({"spawn": list(argv), "log": log}, wait)
        return str(reply["error"]) if "error" in reply else int(reply["pid"])

    def status(self, pid: int, wait: float) -> tuple[bool, int | None]:
        """Whether a process this agent started runs, and its exit code once it has ended."""
        reply = self._ask({"status": pid}, wait)
        if "error" in reply:
            raise AgentGone(str(reply["error"]))
        code = reply.get("rc")
        return bool(reply["running"]), None if code is None else int(code)

    def _ask(self, request: dict[str, Any], wait: float) -> dict[str, Any]:
        """Send ``request`` with an id of its own and wait at most ``wait`` for its reply."""
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            if self._gone:
                raise AgentGone(self._gone)
            self._next += 1
            ident = self._next
            self._pending[ident] = future
            try:
                self._raw.sendall((json.dumps({"id": ident, **request}) + "\n").encode())
            except OSError as exc:
                self._pending.pop(ident, None)
                raise AgentGone(f"writing to the node's agent: {exc}") from exc
        try:
            return future.result(wait)
        except TimeoutError as exc:
            raise AgentGone("the node's agent did not answer in time") from exc
        finally:
            with self._lock:
                self._pending.pop(ident, None)

    def completed(
        self, node: str, argv: Sequence[str], timeout: float, data: str | None, slack: float
    ) -> Completed:
        """``run`` as the backend contract's result; a command past its timeout raises
        CommandTimeout, as an exec would."""
        try:
            code, out, err = self.run(list(argv), timeout, data, timeout + slack)
        except AgentTimeout:
            raise CommandTimeout(
                f"{' '.join(argv)} on {node} did not finish in {timeout:g} s"
            ) from None
        return Completed(tuple(argv), code, out, err)

    def _read(self) -> None:
        buffer = b""
        why = "the node's agent ended"
        try:
            while True:
                header = read_exactly(self._raw, 8)
                if len(header) < 8:
                    break
                payload = read_exactly(self._raw, int.from_bytes(header[4:8], "big"))
                if header[0] != STDOUT:
                    why = f"the node's agent: {payload.decode(errors='replace').strip()}"
                    continue
                buffer += payload
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._deliver(json.loads(line))
        except (OSError, ValueError) as exc:
            why = f"the node's agent: {exc}"
        with self._lock:
            self._gone = why
            waiting = list(self._pending.values())
        for future in waiting:
            with suppress(Exception):
                future.set_exception(AgentGone(why))

    def _deliver(self, reply: dict[str, Any]) -> None:
        with self._lock:
            future = self._pending.get(reply.get("id", -1))
        if future is not None and not future.done():
            future.set_result(reply)

    def close(self) -> None:
        """End the agent (end of its stdin) and drop the stream."""
        with suppress(OSError):
            self._raw.shutdown(socket.SHUT_WR)
        with suppress(OSError):
            self._sock.close()


class AgentProc(DockerProc):
    """A background process the node's agent started: its state is the agent's to tell
    (it is the process's parent), with no exec of its own for the engine to inspect."""

    def __init__(
        self,
        backend: Backend,
        api: docker.APIClient,
        node: str,
        argv: Sequence[str],
        pid: int,
        agent: Agent,
        wait: float,
    ) -> None:
        super().__init__(backend, api, node, argv, "", pid)
        self._agent = agent
        self._wait = wait

    def _state(self) -> tuple[bool, int | None]:
        try:
            return self._agent.status(self._pid, self._wait)
        except AgentGone:
            pass
        # The agent has gone, and with it the exit code: most likely the container too.
        try:
            alive = self._backend.run(self.node, ["kill", "-0", str(self._pid)], timeout=10)
        except BackendError:
            return False, 128 + 9  # the node has gone, and the process with it
        return (True, None) if alive.ok else (False, 128 + 9)


def usable(api: docker.APIClient) -> bool:
    """Whether an agent is used on this engine: this machine's, over its Unix socket."""
    return str(api.base_url) == "http+docker://localhost"
