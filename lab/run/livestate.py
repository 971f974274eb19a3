"""A live lab's state file (``<registry>/live/<run id>.json``), finding a lab by name or
run id, the requests to its supervisor over the Unix socket next to it, and the commands
that reach its nodes directly (see ``lab.run.live``)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import LabError, UsageError
from lab.i18n import msg
from lab.run.backends.base import RUN_ID_RE, Owner
from lab.run.record import write_atomically
from lab.run.session import registry_dir

PHASE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
RESERVED_PHASES = {"before", "during", "after", "final"}
MAX_REQUEST = 64 << 10


def live_dir() -> Path:
    """Where live labs' state files and control sockets are."""
    return registry_dir() / "live"


@dataclass(frozen=True)
class LiveNode:
    """A node as a user reaches it: its interface per network and address per interface."""

    name: str
    interfaces: dict[str, str]  # network -> interface name
    addresses: dict[str, str]  # interface name -> address
    engine: list[str] = field(default_factory=list)  # swarm: docker's options for its engine


@dataclass(frozen=True)
class LiveState:
    """A live lab's state file: who owns it, where it writes, what is in it."""

    run_id: str
    name: str
    topology: str
    backend: str
    out: str
    socket: str
    pid: int
    pid_start: int | None
    started: str
    nodes: list[LiveNode] = field(default_factory=list)
    services: list[str] = field(default_factory=list)  # "name program node:port/proto"
    scenarios: list[str] = field(default_factory=list)
    engines: str | None = None  # swarm: the engines file, absolute (None: DOCKER_HOST)

    def alive(self) -> bool:
        return Owner(self.pid, self.pid_start).alive()

    def node(self, name: str) -> LiveNode:
        for n in self.nodes:
            if n.name == name:
                return n
        names = ", ".join(n.name for n in self.nodes)
        said = msg("live.no_node", name=self.name, run=self.run_id, node=repr(name), names=names)
        raise UsageError.said(said)

    @classmethod
    def from_json(cls, data: Any) -> LiveState | None:
        if not isinstance(data, dict) or not RUN_ID_RE.match(str(data.get("run_id", ""))):
            return None
        try:
            nodes = [LiveNode(**n) for n in data.pop("nodes", [])]
            return cls(**data, nodes=nodes)
        except TypeError:
            return None

    def save(self) -> None:
        live_dir().mkdir(parents=True, exist_ok=True)
        write_atomically(live_dir() / f"{self.run_id}.json", json.dumps(asdict(self), indent=2))


def live_states() -> list[LiveState]:
    """Every live lab's state, alive or stale."""
    states = []
    for path in sorted(live_dir().glob("*.json")):
        try:
            state = LiveState.from_json(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
        if state is not None:
            states.append(state)
    return states


def forget_live(run_id: str) -> None:
    for suffix in (".json", ".sock"):
        with contextlib.suppress(OSError):
            (live_dir() / f"{run_id}{suffix}").unlink()


def find_live(which: str | None) -> LiveState:
    """The live lab named ``which`` (its run id or its name), or the only one."""
    states = live_states()
    if which is None:
        if len(states) == 1:
            return states[0]
        if not states:
            raise UsageError.said(msg("live.none"))
        names = ", ".join(f"{s.name} ({s.run_id})" for s in states)
        raise UsageError.said(msg("live.which", count=len(states), names=names))
    found = [s for s in states if which in (s.run_id, s.name)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError.said(msg("live.unknown", which=repr(which)))
    ids = ", ".join(s.run_id for s in found)
    said = msg("live.same_name", count=len(found), which=repr(which), ids=ids)
    raise UsageError.said(said)


def unique_name(wanted: str) -> str:
    """``wanted``, or ``wanted-2``, ``-3``... when a live lab has the name already."""
    taken = {s.name for s in live_states()}
    for n in range(1, 1000):
        name = wanted if n == 1 else f"{wanted}-{n}"
        if name not in taken:
            return name
    raise UsageError.said(msg("live.too_many", name=repr(wanted)))


def check_phase_name(name: str) -> None:
    if not PHASE_RE.match(name) or name in RESERVED_PHASES:
        reserved = ", ".join(sorted(RESERVED_PHASES))
        raise UsageError.said(msg("live.bad_snapshot_name", name=repr(name), reserved=reserved))


# -- talking to the supervisor ------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    ok: bool
    message: str
    exit_code: int = 0


def request(state: LiveState, op: str, arg: str = "", *, timeout: float | None = None) -> Reply:
    """Send one request to a live lab's supervisor and wait for its reply."""
    if not state.alive():
        raise LabError.said(msg("live.stale", name=state.name, run=state.run_id))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(state.socket)
            sock.sendall(json.dumps({"op": op, "arg": arg}).encode() + b"\n")
            data = read_line(sock)
        except OSError as exc:
            said = msg("live.request_failed", name=state.name, run=state.run_id, error=exc)
            raise LabError.said(said) from exc
    if not data:
        raise LabError.said(msg("live.no_reply", name=state.name, run=state.run_id))
    reply = json.loads(data)
    return Reply(bool(reply["ok"]), str(reply["message"]), int(reply.get("exit_code", 0)))


def send_reply(conn: socket.socket, reply: Reply) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(asdict(reply)).encode() + b"\n")


def read_line(sock: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data and len(data) < MAX_REQUEST:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0]


# The tools a student uses by hand, with the Debian package that has each.
HAND_TOOLS = {
    "telnet": "telnet",
    "nc": "netcat-openbsd",
    "socat": "socat",
    "tcpdump": "tcpdump",
    "netstat": "net-tools",
    "ss": "iproute2",
    "ps": "procps",
    "strace": "strace",
    "bash": "bash",
}


def node_command(state: LiveState, node: str, argv: list[str], *, tty: bool) -> list[str]:
    """The argument list that runs ``argv`` on a live lab's node from this host, its
    stdin, stdout and exit status passed through (``tty``: with a terminal)."""
    state.node(node)
    if not argv:
        raise UsageError.said(msg("live.no_command"))
    if state.backend == "netns":
        from lab.run.backends.netns.names import ns_name

        return ["ip", "netns", "exec", ns_name(state.run_id, node), *argv]
    if state.backend in ("docker", "swarm"):
        from lab.run.backends.docker.engine import object_name

        flags = ["-i", "-t"] if tty else ["-i"]
        engine = state.node(node).engine  # on swarm, the engine that runs the node
        return ["docker", *engine, "exec", *flags, object_name(state.run_id, node), *argv]
    raise UsageError.said(msg("live.backend_no_live", name=state.name, backend=state.backend))
