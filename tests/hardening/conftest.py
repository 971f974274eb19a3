"""Fixtures for the hostile-client tier: servers on one network namespace, hostile clients
on another, joined by a bridge (the lab's own NetnsBackend).

A module brings its two-node LAN up once (``lan`` fixture); servers are spawned on ``srv``
with ``backend.spawn`` and every client, hostile or normal, runs on ``cli`` with
``backend.run``. ``Running.survives(case)`` is the check made after each hostile case.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from lab.programs.hostile_io import Case
from lab.run.backends.base import Backend, Proc, new_run_id
from lab.run.backends.netns import NetnsBackend
from lab.spec.model import Interface, Network, Node, Topology
from tests.conftest import require

SERVER_NODE = "srv"
CLIENT_NODE = "cli"
SUBNET = IPv4Network("10.91.0.0/24")
SERVER_IP = IPv4Address("10.91.0.10")
CLIENT_IP = IPv4Address("10.91.0.11")

# Generous upper bounds for things the test waits for; never speed expectations.
EVENT_TIMEOUT = 30.0  # a log line to appear, connections to finish closing
CASE_TIMEOUT = 240.0  # one hostile client, start to end
# How much a server's resident memory may grow across one hostile case.
RSS_BOUND_KB = 32 * 1024
LISTENING_RE = re.compile(r"^listening (tcp|udp) [\d.]+:(\d+) pid=(\d+)")


@dataclass(frozen=True)
class ServerSpec:
    """A server under test: which program, with which options, speaking what."""

    id: str
    module: str  # run as python3 -m MODULE
    args: tuple[str, ...] = ()
    kind: str = "echo"  # what the hostile corpus expects back: echo, dict or udp
    serial: bool = False  # one connection at a time

    def argv(self, python: str) -> list[str]:
        role = ["server"] if self.kind == "udp" else []
        where = ["--host", "0.0.0.0", "--port", "0"]
        return [python, "-m", self.module, *role, *where, *self.args]

    @property
    def normal_reply(self) -> str:
        return {"echo": "HELLO", "dict": "你好", "udp": "hello"}[self.kind]


SPECS = {
    spec.id: spec
    for spec in (
        ServerSpec("fork", "lab.programs.fork_server"),
        ServerSpec("thread", "lab.programs.thread_server"),
        ServerSpec("iterative", "lab.programs.iterative_server", serial=True),
        ServerSpec("dict", "lab.programs.dict_server", kind="dict"),
        ServerSpec("udp", "lab.programs.udp_echo", kind="udp"),
    )
}
TCP_SERVERS = ["fork", "thread", "iterative", "dict"]


def two_node_lan() -> Topology:
    net = Network("lan", SUBNET)
    return Topology(
        "hostile",
        (net,),
        (
            Node(SERVER_NODE, (Interface("lan", SERVER_IP),)),
            Node(CLIENT_NODE, (Interface("lan", CLIENT_IP),)),
        ),
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@pytest.fixture(scope="module")
def lan() -> Iterator[Backend]:
    """The module's two namespaces, up once and torn down at the end whatever happened:
    SIGTERM is turned into KeyboardInterrupt meanwhile, whose unwinding pytest runs
    through every fixture's teardown (as on Ctrl-C)."""
    require(NetnsBackend.available() is None, NetnsBackend.available() or "")
    backend = NetnsBackend(new_run_id())
    old = signal.signal(signal.SIGTERM, _interrupt)
    try:
        backend.up(two_node_lan())
        yield backend
    finally:
        try:
            backend.down()
        finally:
            signal.signal(signal.SIGTERM, old)
    assert NetnsBackend.clean(backend.run_id) == []  # down() left nothing of this run


@dataclass(frozen=True)
class Holding:
    """A server process seen from its node (see tests/hardening/probe.py)."""

    fds: int
    rss_kb: int
    children: dict[str, str]
    settled: bool


def python_on(backend: Backend, node: str, module: str, *args: str) -> dict[str, Any]:
    """Run ``python3 -m module args`` on a node; its last stdout line, parsed as JSON."""
    done = backend.run(node, [backend.python, "-m", module, *args], timeout=CASE_TIMEOUT)
    lines = done.stdout.strip().splitlines()
    assert lines, f"{module} {' '.join(args)}: no output (exit {done.returncode}): {done.stderr}"
    try:
        doc: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError:
        pytest.fail(f"{module}: not JSON: {lines[-1]!r}; stderr: {done.stderr}")
    return doc


class Running:
    """A server running on the server node, with the checks made around each case."""

    def __init__(self, backend: Backend, spec: ServerSpec, proc: Proc, log: Path) -> None:
        self.backend = backend
        self.spec = spec
        self.proc = proc
        self.log = log
        self.port = 0
        self.pid = 0
        self._last: Holding | None = None  # settled after the last case that passed
        self._first: Holding | None = None  # before the first case
        self.settle_seconds = EVENT_TIMEOUT  # how long closing connections may take

    # -- looking at it ---------------------------------------------------------------------
    def log_lines(self) -> list[str]:
        # Netns nodes share the host's files: the spawn log is readable right here.
        try:
            return self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def wait_for_log(self, pattern: str, start: int = 0, count: int = 1) -> list[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + EVENT_TIMEOUT
        while True:
            found = [line for line in self.log_lines()[start:] if regex.search(line)]
            if len(found) >= count:
                return found
            if not self.proc.running():
                pytest.fail(f"{self.spec.id} exited: {self.log_lines()[-20:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {count} x {pattern!r} in the log: {self.log_lines()[-20:]}")
            time.sleep(0.05)

    def holding(self, settle_fds: int | None = None) -> Holding:
        """What the process holds now, or (``settle_fds``) once it is back to at most that
        many descriptors and no child, polled on its node up to ``settle_seconds``."""
        args = [str(self.pid)]
        if settle_fds is not None:
            args += ["--settle-fds", str(settle_fds), "--deadline", str(self.settle_seconds)]
        doc = python_on(self.backend, SERVER_NODE, "tests.hardening.probe", *args)
        return Holding(doc["fds"], doc["rss_kb"], doc["children"], doc["settled"])

    # -- using it --------------------------------------------------------------------------
    def attack(self, case: Case) -> dict[str, Any]:
        args = [case.name, "--host", str(SERVER_IP), "--port", str(self.port)]
        args += ["--kind", self.spec.kind, *(["--serial"] if self.spec.serial else [])]
        return python_on(self.backend, CLIENT_NODE, "lab.programs.hostile_corpus", *args)

    def normal_client(self) -> dict[str, Any]:
        """The course's own client, one line, from the client node."""
        program = "lab.programs.udp_echo" if self.spec.kind == "udp" else "lab.programs.client"
        role = ["client"] if self.spec.kind == "udp" else []
        args = [*role, "--host", str(SERVER_IP), "--port", str(self.port)]
        return python_on(self.backend, CLIENT_NODE, program, *args, "--send", "hello", "--json")

    def answers_normally(self) -> None:
        doc = self.normal_client()
        replies = [c["replies"] for c in doc["connections"]]
        assert doc["ok"] == 1 and replies == [[self.spec.normal_reply]], doc

    # -- the check after each case ---------------------------------------------------------
    def baseline(self) -> Holding:
        """The state before a case: the last settled one, or (first case, or after a
        failure) a fresh look once the server has no child left."""
        if self._last is None:
            self._last = self.holding(settle_fds=1 << 20)
        if self._first is None:
            self._first = self._last
        return self._last

    def survives(self, case: Case) -> None:
        """Run ``case`` from the client node, then demand: the client saw no problem, the
        server still answers a normal client, and once the connections have closed, it
        holds no more descriptors than before, has no child (zombie or not) and its
        resident memory is within RSS_BOUND_KB of what it was before this case, and before
        the first one (so that small growths cannot add up unseen)."""
        before = self.baseline()
        self._last = None
        mark = len(self.log_lines())
        result = self.attack(case)
        assert result["problems"] == [], (case.what, result, self.log_lines()[-10:])
        assert self.proc.running(), self.log_lines()[-20:]
        if self.spec.serial:
            self.drained()
        self.answers_normally()
        after = self.holding(settle_fds=before.fds)
        zombies = {pid: st for pid, st in after.children.items() if st.startswith("Z")}
        assert zombies == {}, f"zombie children after {case.name}: {zombies}"
        assert after.children == {}, f"children still running after {case.name}"
        assert after.fds <= before.fds, f"descriptors {before.fds} -> {after.fds}"
        first = self._first or before
        # The figures behind the memory bound (shown with -s, or with a failure).
        print(f"{self.spec.id} {case.name}: fds {before.fds}->{after.fds}", end=" ")
        print(f"VmRSS kB {first.rss_kb}/{before.rss_kb}->{after.rss_kb}")
        grew = after.rss_kb - min(before.rss_kb, first.rss_kb)
        assert grew <= RSS_BOUND_KB, f"VmRSS {first.rss_kb}, {before.rss_kb} -> {after.rss_kb} kB"
        if case.log is not None:
            self.wait_for_log(case.log, start=mark)
        self._last = after

    def drained(self, limit: float = 120.0) -> None:
        """A serial server serves what a case left queued one connection at a time, and one
        it accepted late (the queue had overflowed) waits on the client's retransmission
        backoff: wait, within ``limit``, until no connection is left on its port."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            done = self.backend.run(SERVER_NODE, ["ss", "-Htn"])
            busy = [
                line
                for line in done.stdout.splitlines()
                if f"{SERVER_IP}:{self.port} " in line and not line.startswith("TIME-WAIT")
            ]
            if not busy:
                return
            time.sleep(0.5)

    def stop(self) -> int | None:
        return self.proc.stop(timeout=10.0)


def start_server(
    backend: Backend, spec: ServerSpec, wrapper: Sequence[str] = (), tag: str = ""
) -> Running:
    """Spawn ``spec`` on the server node (behind ``wrapper``, e.g. prlimit) and wait until
    it listens; its port and PID come from its ``listening`` line."""
    log = backend.workdir(SERVER_NODE) / f"{spec.id}{tag}.log"
    proc = backend.spawn(SERVER_NODE, [*wrapper, *spec.argv(backend.python)], log=log)
    running = Running(backend, spec, proc, Path(str(log)))
    match = LISTENING_RE.match(running.wait_for_log(r"^listening ")[0])
    assert match is not None
    running.port, running.pid = int(match.group(2)), int(match.group(3))
    assert running.pid == proc.pid  # ip netns exec (and any wrapper) exec()ed the server
    return running
