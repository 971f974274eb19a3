"""Finding a scenario's own traffic and sockets in a results folder.

A scenario's connections are found by their client ports (from the clients' own report in
run.json), the clients' addresses and the service's port, so that several scenarios on one
service and one client node never mix.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.evidence.analysis.snapshots import SocketRow, parse_sockets
from lab.evidence.analysis.tcp import CLIENT, TcpConnection, tcp_connections
from lab.evidence.analysis.udp import UdpFlow, udp_flows
from lab.evidence.folder import Evidence
from lab.i18n import msg
from lab.run.record import ClientRecord, ClientResult, ConnectionOutcome
from lab.spec.model import Scenario, Service, Topology
from lab.verdict.check import Check


def scenario_clients(ev: Evidence, sc: Scenario) -> dict[str, ClientRecord]:
    """The scenario's client runs by node, as run.json recorded them (none if it never ran)."""
    record = ev.record.scenarios.get(sc.name)
    return record.clients if record is not None else {}


def line_connections(client: ClientRecord | None) -> list[ConnectionOutcome]:
    """The connections a line or UDP client reported; none for a probe or no result."""
    result = client.result if client is not None else None
    return result.connections if isinstance(result, ClientResult) else []


def client_ports(ev: Evidence, sc: Scenario) -> set[int]:
    """The local ports the scenario's clients (line clients and probes) used, as they
    reported them."""
    ports: set[int] = set()
    clients = scenario_clients(ev, sc)
    for node in sc.clients:
        client = clients.get(node)
        result = client.result if client is not None else None
        for conn in result.connections if result is not None else []:
            local = conn.local
            if local is not None and local.rpartition(":")[2].isdigit():
                ports.add(int(local.rpartition(":")[2]))
    return ports


def ips(topo: Topology, nodes: list[str] | tuple[str, ...]) -> set[str]:
    return {str(i.address) for n in nodes for i in topo.node(n).interfaces}


@dataclass(frozen=True)
class Scope:
    """What marks a packet as the scenario's: the service, both ends' IPs, client ports."""

    service: Service
    server_ips: set[str]
    client_ips: set[str]
    ports: set[int]
    any_port: bool = False  # the client nodes' connections to the service are all its own

    def owns(self, client_ip: str, client_port: int, server_ip: str, server_port: int) -> bool:
        return (
            server_port == self.service.port
            and server_ip in self.server_ips
            and client_ip in self.client_ips
            and (self.any_port or client_port in self.ports)
        )


def scope(topo: Topology, ev: Evidence, sc: Scenario) -> Scope:
    service = topo.service(sc.service)
    ports = client_ports(ev, sc)
    return Scope(
        service,
        ips(topo, [service.node]),
        ips(topo, sc.clients),
        ports,
        any_port=not ports and _alone(topo, sc),
    )


def _alone(topo: Topology, sc: Scenario) -> bool:
    """A client program whose local ports went unrecorded (in a Docker container its
    socket table cannot be read: no CAP_SYS_PTRACE) is still known by its nodes, when no
    other scenario has a client on them talking to the same service."""
    if sc.client_program is None:
        return False
    return not any(
        other.name != sc.name
        and other.service == sc.service
        and set(other.clients) & set(sc.clients)
        for other in topo.scenarios
    )


def tcp_on(ev: Evidence, node: str, scope: Scope) -> list[TcpConnection]:
    """The scenario's TCP connections as the captures of ``node`` saw them."""
    out: dict[tuple[str, int, str, int], TcpConnection] = {}
    for path in ev.captures(node):
        for conn in tcp_connections(ev.packets(path)):
            if scope.owns(*conn.four_tuple) and conn.four_tuple not in out:
                out[conn.four_tuple] = conn
    return list(out.values())


def tcp(topo: Topology, ev: Evidence, sc: Scenario) -> tuple[Scope, list[TcpConnection]]:
    """The scenario's scope and its TCP connections as the server's captures saw them."""
    found = scope(topo, ev, sc)
    return found, tcp_on(ev, found.service.node, found)


def udp(topo: Topology, ev: Evidence, sc: Scenario) -> tuple[Scope, list[UdpFlow]]:
    """The scenario's scope and its UDP flows as the server's captures saw them."""
    found = scope(topo, ev, sc)
    flows: dict[tuple[str, int, str, int], UdpFlow] = {}
    for path in ev.captures(found.service.node):
        for flow in udp_flows(ev.packets(path)):
            # A flow's "client" is its first sender, which is the server when the
            # client's first datagram was not captured: take either orientation.
            ends = (*flow.four_tuple[2:], *flow.four_tuple[:2])
            if found.owns(*flow.four_tuple) or found.owns(*ends):
                flows.setdefault(flow.four_tuple, flow)
    return found, list(flows.values())


def client_sent(scope: Scope, flow: UdpFlow, sender: str) -> bool:
    """Whether datagrams labelled ``sender`` in ``flow`` came from the scenario's client."""
    opened_by_client = scope.owns(*flow.four_tuple)
    return (sender == CLIENT) == opened_by_client


def saw_nothing(check: Check) -> bool:
    """Whether ``check`` failed for want of any of the scenario's traffic (``none_seen``)."""
    return not check.passed and check.detail.startswith("no ") and _NONE_SEEN in check.detail


_NONE_SEEN = " of the scenario to "


# What none_seen looked for, by its English name.
_WHAT = {"TCP connections": "what.tcp", "UDP datagrams": "what.udp", "SYNs": "what.syns"}


def none_seen(name: str, scope: Scope, what: str = "TCP connections") -> Check:
    said = msg(
        "detail.none_seen",
        what=msg(_WHAT[what]),
        service=scope.service.name,
        port=scope.service.port,
        node=scope.service.node,
        ports=sorted(scope.ports),
    )
    return Check.said(name, False, said)


def sockets(ev: Evidence, node: str, phase: str) -> list[SocketRow] | None:
    """The sockets of a node's snapshot, from ``ss`` or else ``netstat``; None if neither."""
    for kind in ("ss", "netstat"):
        text = ev.snapshot(node, phase, kind)
        if text is not None:
            return parse_sockets(text)
    return None
