"""Two network namespaces on one LAN, brought up by the lab's own NetnsBackend: a server
on ``srv``, the load generator on ``cli``, a real veth/bridge link between them.

Servers are started under ``prlimit --nofile=SOFT:`` when a soft descriptor limit is
given, so the limit they run with is the one the caller chose, not whatever the shell
that started the tests had (the servers themselves are not changed for this).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from lab.run.backends.base import Proc, new_run_id
from lab.run.backends.netns import NetnsBackend
from lab.spec.model import Interface, Network, Node, Topology

SUBNET = IPv4Network("10.88.0.0/24")
SERVER_IP = "10.88.0.1"
CLIENT_IP = "10.88.0.2"
# Waiting for a server's "listening" line: a bound on an expected event, not a speed check.
LISTEN_WAIT = 20.0


def pair_topology() -> Topology:
    lan = Network("lan", SUBNET)
    nodes = (
        Node("srv", (Interface("lan", IPv4Address(SERVER_IP)),)),
        Node("cli", (Interface("lan", IPv4Address(CLIENT_IP)),)),
    )
    return Topology(name="loadpair", networks=(lan,), nodes=nodes)


@dataclass
class Pair:
    backend: NetnsBackend
    _started: int = field(default=0)

    def sysctl(self, node: str, key: str) -> str:
        done = self.backend.run(node, ["sysctl", "-n", key])
        return done.stdout.strip()

    def start_server(
        self, program: str, *args: str, port: int, nofile: int | None = None
    ) -> tuple[Proc, Path]:
        """Start ``lab.programs.<program>`` on srv; return once its log says listening."""
        self._started += 1
        remote = self.backend.workdir("srv") / f"{program}-{self._started}.log"
        log = Path(remote)  # a netns node's files are host files
        argv = [self.backend.python, "-m", f"lab.programs.{program}"]
        argv += ["--host", SERVER_IP, "--port", str(port), *args]
        if nofile is not None:
            argv = ["prlimit", f"--nofile={nofile}:", "--", *argv]
        proc = self.backend.spawn("srv", argv, log=remote)
        deadline = time.monotonic() + LISTEN_WAIT
        while "listening tcp" not in _read(log):
            if not proc.running() or time.monotonic() > deadline:
                proc.stop()
                raise RuntimeError(f"{program} did not start listening: {_read(log)[-2000:]}")
            time.sleep(0.02)
        return proc, log

    def loadgen(self, *args: str, timeout: float = 300.0) -> tuple[int, dict[str, Any], str]:
        """Run the load generator on cli with --json: (exit status, its JSON, its stderr)."""
        argv = [self.backend.python, "-m", "lab.programs.loadgen", "--host", SERVER_IP]
        done = self.backend.run("cli", [*argv, *args, "--json"], timeout=timeout)
        lines = done.stdout.splitlines()
        if len(lines) != 1:
            raise RuntimeError(f"loadgen printed {done.stdout!r}; stderr {done.stderr!r}")
        doc: dict[str, Any] = json.loads(lines[0])
        return done.returncode, doc, done.stderr


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


@contextmanager
def lan_pair() -> Iterator[Pair]:
    """Up the two-node LAN; tear it down (every process in it included) however we leave."""
    backend = NetnsBackend(new_run_id())
    try:
        backend.up(pair_topology())
        yield Pair(backend)
    finally:
        backend.down()
