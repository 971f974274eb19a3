"""Per-connection evidence of a results folder: every TCP connection and UDP flow in the
captures, once each, named by the topology's hosts and tied to the scenario that made it.

A connection is usually captured more than once: on the client's interface, on the
server's, and on each side of every router in between. The sightings are grouped by their
4-tuple and initial sequence numbers (a reused port after TIME_WAIT has new ISNs, so it stays
a separate connection); one record is kept per group, taken from the client's own capture
when there is one (the course's figures are drawn from the client's point of view). When a
group was seen on two different networks, ``path`` says what the hop changed, as
:func:`lab.evidence.analysis.match_connections` reports it.

Everything here is a pure function of the folder's files and ``run.json``; the records
(:mod:`lab.evidence.records`) are what summary.json and the HTML report carry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.evidence.analysis import (
    Endpoint,
    Packet,
    TcpConnection,
    UdpFlow,
    match_connections,
    read_packets,
    tcp_connections,
    udp_flows,
)
from lab.evidence.analysis.files import EvidenceFileError
from lab.evidence.analysis.paths import HopChange
from lab.evidence.records import (
    EndRecord,
    HopRecord,
    IntSides,
    PacketSightingRecord,
    PathRecord,
    TcpRecord,
    UdpRecord,
)
from lab.evidence.tcp_record import SEGMENTS_TAIL as SEGMENTS_TAIL
from lab.evidence.tcp_record import Names, Seen, tcp_record
from lab.run.record import RunRecord
from lab.spec.model import Topology

Reader = Callable[[Path], list[Packet]]  # a capture's decoded packets


@dataclass(frozen=True)
class Sighting:
    """One connection (or flow) as one capture saw it."""

    capture: str  # "node/file", the path under the results folder
    node: str
    network: str | None
    conn: TcpConnection | UdpFlow


@dataclass(frozen=True)
class _Capture:
    node: str
    network: str | None
    rel: str
    path: Path


# -- reading the captures ----------------------------------------------------------------------


def _captures(out_dir: Path, run: RunRecord) -> list[_Capture]:
    rels = [(c, f"{c.node}/{c.file}") for c in run.captures]
    return [_Capture(c.node, c.network, rel, out_dir / rel) for c, rel in rels]


def _sightings(
    out_dir: Path, run: RunRecord, read: Reader
) -> tuple[list[Sighting], list[Sighting]]:
    """TCP and UDP sightings of every readable capture, in capture order. An unreadable or
    missing capture contributes nothing (summary.json's evidence problems report it)."""
    tcp: list[Sighting] = []
    udp: list[Sighting] = []
    for cap in _captures(out_dir, run):
        try:
            packets = read(cap.path)
        except (EvidenceFileError, OSError):
            continue
        tcp += [Sighting(cap.rel, cap.node, cap.network, c) for c in tcp_connections(packets)]
        udp += [Sighting(cap.rel, cap.node, cap.network, f) for f in udp_flows(packets)]
    return tcp, udp


def _compatible(a: tuple[int | None, int | None], b: tuple[int | None, int | None]) -> bool:
    """ISN pairs that may belong to one connection: equal wherever both are known (a
    capture that dropped the SYN or the SYN-ACK knows only one of them, or neither)."""
    return all(x is None or y is None or x == y for x, y in zip(a, b, strict=True))


@dataclass
class _Group:
    isns: tuple[int | None, int | None]
    start: float
    sightings: list[Sighting]


def _group(sightings: Iterable[Sighting]) -> list[list[Sighting]]:
    """Sightings of the same connection together, ordered by first packet. Sightings share
    a group when their 4-tuples are equal and their known ISNs agree; a port reused after
    TIME_WAIT has new ISNs and so starts a new group. When several groups would do (a
    capture that missed the whole handshake), the one that started nearest in time wins."""
    by_tuple: dict[tuple[str, int, str, int], list[_Group]] = {}
    groups: list[_Group] = []
    for s in sightings:
        conn = s.conn
        assert isinstance(conn, TcpConnection)
        isns = (conn.handshake.client_isn, conn.handshake.server_isn)
        candidates = [g for g in by_tuple.get(conn.four_tuple, []) if _compatible(g.isns, isns)]
        if candidates:
            group = min(candidates, key=lambda g: abs(g.start - conn.start_time))
            group.isns = (group.isns[0] or isns[0], group.isns[1] or isns[1])
            group.start = min(group.start, conn.start_time)
        else:
            group = _Group(isns, conn.start_time, [])
            groups.append(group)
            by_tuple.setdefault(conn.four_tuple, []).append(group)
        group.sightings.append(s)
    return [g.sightings for g in sorted(groups, key=lambda g: g.start)]


# -- naming: hosts, services, scenarios ------------------------------------------------------------


def _host_names(topology: Topology) -> dict[str, str]:
    return {str(i.address): n.name for n in topology.nodes for i in n.interfaces}


@dataclass(frozen=True)
class _ScenarioIndex:
    """Which scenario a connection belongs to: first by the client's local address as the
    client program reported it in run.json (exact), else by the service listening on the
    server's address and port, narrowed to scenarios whose clients include the client node."""

    by_local: Mapping[tuple[str, str], str]
    by_service: Mapping[tuple[str, int, str], list[tuple[str, tuple[str, ...]]]]

    @classmethod
    def build(cls, topology: Topology, run: RunRecord) -> _ScenarioIndex:
        by_local: dict[tuple[str, str], str] = {}
        for name, sc in run.scenarios.items():
            proto = _protocol_of(topology, sc.service)
            for client in sc.clients.values():
                conns = client.result.connections if client.result else []
                for conn in conns:
                    if conn.local is not None:
                        by_local[(proto, conn.local)] = name
        by_service: dict[tuple[str, int, str], list[tuple[str, tuple[str, ...]]]] = {}
        for svc in topology.services:
            users = [(sc.name, sc.clients) for sc in topology.scenarios if sc.service == svc.name]
            for iface in topology.node(svc.node).interfaces:
                by_service[(str(iface.address), svc.port, svc.protocol)] = users
        return cls(by_local, by_service)

    def service_of(self, server: Endpoint, protocol: str, topology: Topology) -> str | None:
        for svc in topology.services:
            if svc.port != server.port or svc.protocol != protocol:
                continue
            if any(str(i.address) == server.ip for i in topology.node(svc.node).interfaces):
                return svc.name
        return None

    def scenario(
        self, client: Endpoint, server: Endpoint, protocol: str, node: str | None
    ) -> str | None:
        exact = self.by_local.get((protocol, str(client)))
        if exact is not None:
            return exact
        users = self.by_service.get((server.ip, server.port, protocol), [])
        narrowed = [name for name, clients in users if node in clients] or [n for n, _ in users]
        return narrowed[0] if len(narrowed) == 1 else None


def _protocol_of(topology: Topology, service: str) -> str:
    for svc in topology.services:
        if svc.name == service:
            return svc.protocol
    return "tcp"


# -- one record ------------------------------------------------------------------------------------


def _primary(group: Sequence[Sighting], client_node: str | None) -> Sighting:
    """The sighting a record is built from: the most complete one, the client's own
    capture first among equals."""

    def rank(s: Sighting) -> tuple[bool, bool, int, bool]:
        conn = s.conn
        assert isinstance(conn, TcpConnection)
        hs = conn.handshake
        return (hs.ok, conn.handshake_seen, len(conn.segments), s.node == client_node)

    return max(group, key=rank)


def _path(group: Sequence[Sighting]) -> PathRecord | None:
    """What a hop changed, when the connection was seen on two networks: the first capture
    (nearest the client) against the last one (nearest the server)."""
    networks = {s.network for s in group}
    if len(networks) < 2:
        return None
    a, b = group[0], group[-1]
    for s in group:
        if s.network != a.network:
            b = s
    ca, cb = a.conn, b.conn
    assert isinstance(ca, TcpConnection) and isinstance(cb, TcpConnection)
    matches = match_connections([ca], [cb], a.capture, b.capture)
    if not matches:
        return None
    m = matches[0]
    return PathRecord(
        captures=[a.capture, b.capture],
        matched_by=m.matched_by,
        summary=m.summary,
        client_to_server=_hop(m.client_to_server),
        server_to_client=_hop(m.server_to_client),
    )


def _hop(hop: HopChange | None) -> HopRecord | None:
    if hop is None:
        return None
    up, down = (PacketSightingRecord(**asdict(x)) for x in (hop.upstream, hop.downstream))
    return HopRecord(
        hop.direction,
        list(hop.flags),
        up,
        down,
        hop.ips_rewritten,
        hop.macs_rewritten,
        hop.ttl_change,
        hop.summary,
    )


def _tcp(
    number: int,
    group: Sequence[Sighting],
    hosts: Mapping[str, str],
    index: _ScenarioIndex,
    topology: Topology,
) -> TcpRecord:
    """The record of one group: built from its most complete sighting, named by the
    topology's hosts and tied to its service and scenario."""
    first = group[0].conn
    assert isinstance(first, TcpConnection)
    client_node = hosts.get(first.client.ip)
    prime = _primary(group, client_node)
    conn = prime.conn
    assert isinstance(conn, TcpConnection)
    names = Names(
        client_node=client_node,
        server_node=hosts.get(conn.server.ip),
        service=index.service_of(conn.server, "tcp", topology),
        scenario=index.scenario(conn.client, conn.server, "tcp", client_node),
    )
    seen = Seen([s.capture for s in group], prime.capture, _path(group))
    return tcp_record(f"tcp-{number}", conn, names, seen)


# -- entry points ----------------------------------------------------------------------------------


def connection_records(out_dir: Path, topology: Topology, run: RunRecord) -> list[TcpRecord]:
    """Every TCP connection in the folder's captures, one record per connection, in order
    of first appearance (see the module docstring for the fields' sources)."""
    return _records(out_dir, topology, run, read_packets)[0]


def connection_evidence(
    out_dir: Path, topology: Topology, run: RunRecord, read: Reader = read_packets
) -> tuple[list[TcpRecord], list[UdpRecord]]:
    """``(connections, udp_flows)``: the TCP records of :func:`connection_records` and one
    record per UDP flow, reading each capture once (with ``read``: say the packets the
    checks already decoded, ``Evidence.packets``)."""
    return _records(out_dir, topology, run, read)


def _records(
    out_dir: Path, topology: Topology, run: RunRecord, read: Reader
) -> tuple[list[TcpRecord], list[UdpRecord]]:
    tcp, udp = _sightings(out_dir, run, read)
    hosts = _host_names(topology)
    index = _ScenarioIndex.build(topology, run)
    groups = _group(tcp)
    conns = [_tcp(i + 1, g, hosts, index, topology) for i, g in enumerate(groups)]
    flows = _udp_records(udp, hosts, index, topology)
    return conns, flows


def _udp_records(
    sightings: Sequence[Sighting],
    hosts: Mapping[str, str],
    index: _ScenarioIndex,
    topology: Topology,
) -> list[UdpRecord]:
    groups: dict[tuple[str, int, str, int], list[Sighting]] = {}
    for s in sightings:
        flow = s.conn
        assert isinstance(flow, UdpFlow)
        key = flow.four_tuple
        reverse = (key[2], key[3], key[0], key[1])
        groups.setdefault(reverse if reverse in groups else key, []).append(s)
    out = []
    for number, group in enumerate(groups.values(), start=1):
        client_node = None
        flow = group[0].conn
        assert isinstance(flow, UdpFlow)
        client_node = hosts.get(flow.client.ip)
        best = max(group, key=lambda s: (len(s.conn.datagrams), s.node == client_node))  # type: ignore[union-attr]
        flow = best.conn
        assert isinstance(flow, UdpFlow)
        out.append(
            UdpRecord(
                id=f"udp-{number}",
                protocol="udp",
                client=EndRecord(hosts.get(flow.client.ip), flow.client.ip, flow.client.port),
                server=EndRecord(hosts.get(flow.server.ip), flow.server.ip, flow.server.port),
                service=index.service_of(flow.server, "udp", topology),
                scenario=index.scenario(flow.client, flow.server, "udp", client_node),
                datagrams=IntSides(flow.client_datagrams, flow.server_datagrams),
                bytes=IntSides(flow.client_bytes, flow.server_bytes),
                sizes=list(flow.sizes[:50]),
                start=flow.start_time,
                duration=round(flow.end_time - flow.start_time, 6),
                seen_in=[s.capture for s in group],
                evidence=best.capture,
            )
        )
    return out
