"""Pre-flight: each host of a topology connected to and checked (``prepare.preflight``),
for bring-up, or alone (``check_hosts``: then disconnected, nothing made on any host)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

from lab.errors import BackendError
from lab.run.backends.ssh.cleanup import parallel
from lab.run.backends.ssh.conn import Host, Options
from lab.run.backends.ssh.node import RemoteNode
from lab.run.backends.ssh.prepare import preflight
from lab.run.backends.ssh.state import HostState, resolve_keys
from lab.run.userbuild import tools_on
from lab.spec.model import Node, Topology


def key_base(topology: Topology) -> Path:
    """Where relative key paths start: the topology file's folder."""
    return topology.source.resolve().parent if topology.source else Path.cwd()


def ports_on(topology: Topology, node: str) -> list[tuple[str, int]]:
    """The (protocol, port) the topology's services listen on, on ``node``."""
    return [(s.protocol, s.port) for s in topology.services if s.node == node]


def connect_and_check(
    run_id: str, state: HostState, node: Node, topology: Topology, options: Options
) -> tuple[RemoteNode | None, list[str]]:
    """Connect to a node's host and check it: the connected node (None if the connection
    failed) and what the host lacks (empty: it can run the lab)."""
    try:
        host = Host(state.target, options)
    except BackendError as exc:
        return None, [str(exc)]
    r = RemoteNode(run_id, state, host)
    try:
        tools = tools_on(topology, node.name)
        return r, preflight(r, node, tools, ports_on(topology, node.name))
    except BackendError as exc:
        return r, [str(exc)]


def check_hosts(topology: Topology, options: Options, run_id: str) -> list[str]:
    """Every host's problems, one line per host in the topology's order, from a pre-flight
    alone: each connection closed again, nothing made on any host."""
    base = key_base(topology)
    problems: dict[str, str] = {}
    lock = threading.Lock()

    def one(node: Node) -> None:
        assert node.ssh is not None
        state = HostState(node.name, resolve_keys(node.ssh, base))
        r, found = connect_and_check(run_id, state, node, topology, options)
        if r is not None:
            r.host.close()
        if found:
            with lock:
                problems[node.name] = "; ".join(found)

    parallel(list(topology.nodes), one)
    targets = {n.name: str(resolve_keys(n.ssh, base)) for n in topology.nodes if n.ssh}
    return host_lines(topology, problems, targets)


def host_lines(
    topology: Topology, problems: Mapping[str, str], targets: Mapping[str, str]
) -> list[str]:
    return [
        f"node {n.name} ({targets[n.name]}): {problems[n.name]}"
        for n in topology.nodes
        if n.name in problems
    ]


def unfit(lines: list[str]) -> str:
    """The message for hosts that cannot run the lab, before anything was started."""
    count = len(lines)
    return (
        f"{count} host{'s' if count != 1 else ''} cannot run the lab; nothing was started:\n"
        + "\n".join(f"  {line}" for line in lines)
    )
