"""The machines a submission is graded on over ssh (``lab grade --backend ssh --hosts
FILE``): a topology file, as ``lab run --backend ssh`` takes one, whose nodes ``server``,
``c1``, ``c2`` and ``c3`` are existing machines with ``ssh:`` targets and their real
addresses. Those four nodes and the networks they are on are taken; the rest of the file
(other nodes, services, programs, scenarios) is not used, so that a lab's own file can
serve."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from lab.errors import TopologyError, UsageError, read_back_all
from lab.grade.submission import NODE_NAMES
from lab.i18n import Msg, msg
from lab.run.backends.base import Backend
from lab.run.backends.ssh.state import resolve_keys
from lab.spec.model import Capture, Network, Node, Topology
from lab.spec.topology import load_topology


@dataclass(frozen=True)
class Hosts:
    """The grading lab's nodes (in NODE_NAMES' order, key paths made absolute) and the
    networks they are on, read from ``source``."""

    source: Path
    networks: tuple[Network, ...]
    nodes: tuple[Node, ...]


def read_hosts(path: Path) -> Hosts:
    """The hosts file read and checked; every problem at once, as a ``TopologyError``
    (exit 2) located in the file."""
    topology = load_topology(path, sources=False)  # its programs are not used
    problems: list[Msg] = []
    for name in NODE_NAMES:
        try:
            node = topology.node(name)
        except KeyError:
            problems.append(msg("grade.hosts.no_node", path=path, name=repr(name)))
            continue
        if node.ssh is None:
            problems.append(msg("grade.hosts.no_ssh", path=path, name=name))
    impaired = sorted({i.node for i in topology.impairments if i.node in NODE_NAMES})
    if impaired:
        problems.append(msg("grade.hosts.netem", path=path, nodes=", ".join(impaired)))
    if problems:
        raise TopologyError.said_all(problems)
    base = path.resolve().parent
    nodes = tuple(topology.node(name) for name in NODE_NAMES)
    nodes = tuple(replace(n, ssh=resolve_keys(n.ssh, base)) for n in nodes if n.ssh)
    used = {net for n in nodes for net in n.networks}
    networks = tuple(net for net in topology.networks if net.name in used)
    return Hosts(path, networks, nodes)


def on_hosts(topology: Topology, hosts: Hosts | None) -> Topology:
    """The grading lab on the given machines (as it is without them). Captures keep to
    the graded port: the SSH sessions that drive the machines, and whatever else their
    LAN carries, often share the interface."""
    if hosts is None:
        return topology
    service = topology.services[0]
    capture = Capture(filter=f"{service.protocol} port {service.port}")
    return replace(topology, networks=hosts.networks, nodes=hosts.nodes, capture=capture)


def refuse_unfit(topology: Topology, backend_cls: type[Backend], where: str) -> None:
    """Bad input, said before anything is created (exit 2): what the backend refuses in
    the topology, then what its hosts lack (a host unreachable, a compiler missing, the
    port taken), found by a pre-flight that leaves nothing on them."""
    problems = backend_cls.topology_problems(topology) or backend_cls.host_problems(topology)
    if problems:
        raise UsageError.said(msg("plain.where", where=where, problems=read_back_all(problems)))
