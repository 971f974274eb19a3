"""Per-connection evidence of a results folder: every TCP connection and UDP flow in the
captures, once each, named by the topology's hosts and tied to the scenario that made it.

A connection is usually captured more than once: on the client's interface, on the
server's, and on each side of every router in between. The sightings are grouped by their
4-tuple and initial sequence numbers (a reused port after TIME_WAIT has new ISNs, so it stays
a separate connection); one record is kept per group, taken from the client's own capture
when there is one (the course's figures are drawn from the client's point of view). When a
group was seen on two different networks, ``path`` says what the hop changed, as
:func:`lab.evidence.analysis.match_connections` reports it.

Everything here is a pure function of the folder's files and ``run.json``; the records are
plain JSON data for summary.json and the HTML report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.evidence.analysis import (
    CaptureError,
    Endpoint,
    TcpConnection,
    UdpFlow,
    match_connections,
    read_packets,
    tcp_connections,
    udp_flows,
)
from lab.evidence.analysis.tcp import WindowEvent
from lab.spec.model import Topology

# A record keeps every segment of a short connection; a long one keeps its first and last
# segments (the handshake and the close), and says how many were left out in between.
SEGMENTS_HEAD = 40
SEGMENTS_TAIL = 24
# Bytes of payload shown per segment: enough for one request or reply line.
PAYLOAD_PREVIEW = 64
# Segments kept from the middle of a long connection because they matter (zero windows,
# probes, window updates, retransmissions, resets, with the segment before each).
KEY_SEGMENTS = 60
# Window events listed per connection, and points of a window-over-time series.
WINDOW_EVENTS = 200
WINDOW_POINTS = 300


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


def _captures(out_dir: Path, run: Mapping[str, Any]) -> list[_Capture]:
    out = []
    for c in run.get("captures", []):
        rel = f"{c['node']}/{c['file']}"
        out.append(_Capture(str(c["node"]), c.get("network"), rel, out_dir / rel))
    return out


def _sightings(out_dir: Path, run: Mapping[str, Any]) -> tuple[list[Sighting], list[Sighting]]:
    """TCP and UDP sightings of every readable capture, in capture order. An unreadable or
    missing capture contributes nothing (the "captured" check already reports it)."""
    tcp: list[Sighting] = []
    udp: list[Sighting] = []
    for cap in _captures(out_dir, run):
        try:
            packets = read_packets(cap.path)
        except (CaptureError, OSError):
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
    def build(cls, topology: Topology, run: Mapping[str, Any]) -> _ScenarioIndex:
        by_local: dict[tuple[str, str], str] = {}
        for name, sc in run.get("scenarios", {}).items():
            proto = _protocol_of(topology, sc.get("service"))
            for client in (sc.get("clients") or {}).values():
                result = (client or {}).get("result") or {}
                for conn in result.get("connections", []) or []:
                    local = conn.get("local")
                    if isinstance(local, str):
                        by_local[(proto, local)] = name
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


def _protocol_of(topology: Topology, service: object) -> str:
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


def _path(group: Sequence[Sighting]) -> dict[str, Any] | None:
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
    return {
        "captures": [a.capture, b.capture],
        "matched_by": m.matched_by,
        "summary": m.summary,
        "client_to_server": m.client_to_server.to_dict() if m.client_to_server else None,
        "server_to_client": m.server_to_client.to_dict() if m.server_to_client else None,
    }


def _preview(payload: bytes) -> str:
    text = payload[:PAYLOAD_PREVIEW].decode("utf-8", errors="backslashreplace")
    return text + ("..." if len(payload) > PAYLOAD_PREVIEW else "")


def _segment(seg: Any, start: float) -> dict[str, Any]:
    opts = seg.options
    options: dict[str, Any] = {}
    if opts.mss is not None:
        options["mss"] = opts.mss
    if opts.wscale is not None:
        options["wscale"] = opts.wscale
    if opts.sack_permitted:
        options["sack_perm"] = True
    if opts.timestamp is not None:
        options["ts"] = list(opts.timestamp)
    return {
        "index": seg.index,
        "t": round(seg.time - start, 6),
        "from": seg.sender,
        "flags": list(seg.flags),
        "seq": seg.relative_seq,
        "ack": seg.relative_ack,
        "len": seg.payload_len,
        "win": seg.window,
        "win_bytes": seg.window_bytes,
        "options": options,
        "ttl": seg.ttl,
        "retransmission": seg.retransmission,
        "payload": _preview(seg.payload),
    }


def _key_positions(conn: TcpConnection) -> set[int]:
    """Positions (in ``conn.segments``) of the segments a long connection must keep
    whatever their place: zero windows, probes, window updates, retransmissions and
    resets, each with the segment before it, at most :data:`KEY_SEGMENTS` of them."""
    wanted = {e.index for e in _window_events(conn)}
    wanted |= {r.index for r in conn.retransmissions}
    keep: set[int] = set()
    for pos, seg in enumerate(conn.segments):
        if seg.index in wanted or seg.has("RST"):
            keep |= {pos - 1, pos} if pos else {pos}
        if len(keep) >= KEY_SEGMENTS:
            break
    return keep


def _segments(conn: TcpConnection) -> tuple[list[dict[str, Any]], int]:
    """The kept segments, each with ``pos``, its place among all the connection's
    segments (a jump in ``pos`` is where segments were left out), and how many were."""
    segs = conn.segments
    n = len(segs)
    if n <= SEGMENTS_HEAD + SEGMENTS_TAIL:
        positions = list(range(n))
    else:
        head_tail = set(range(SEGMENTS_HEAD)) | set(range(n - SEGMENTS_TAIL, n))
        positions = _close_gaps(sorted(head_tail | _key_positions(conn)))
    out = []
    for pos in positions:
        record = _segment(segs[pos], conn.start_time)
        record["pos"] = pos
        out.append(record)
    return out, n - len(positions)


def _close_gaps(positions: list[int], small: int = 2) -> list[int]:
    """Positions with gaps of up to ``small`` segments filled in: an elision mark would
    take as much room as the segments it hides."""
    out: list[int] = []
    for pos in positions:
        if out and 1 < pos - out[-1] <= small + 1:
            out += range(out[-1] + 1, pos)
        out.append(pos)
    return out


def _window_events(conn: TcpConnection) -> list[WindowEvent]:
    return sorted(
        [*conn.zero_windows, *conn.zero_window_probes, *conn.window_updates],
        key=lambda e: (e.index, e.kind),
    )


def _events(conn: TcpConnection) -> list[dict[str, Any]]:
    """Zero windows, zero-window probes and window updates in capture order (at most
    :data:`WINDOW_EVENTS`), times relative to the connection's first segment."""
    return [
        {
            "kind": e.kind,
            "index": e.index,
            "t": round(e.time - conn.start_time, 6),
            "from": e.sender,
            "win_bytes": e.window_bytes,
            "previous_win_bytes": e.previous_window_bytes,
        }
        for e in _window_events(conn)[:WINDOW_EVENTS]
    ]


def _window_series(conn: TcpConnection) -> dict[str, list[list[float]]]:
    """For each side that advertised a zero window: ``[t, window bytes]`` at each change
    of its advertised window, for the window-over-time chart. Thinned to at most
    :data:`WINDOW_POINTS` points, keeping every zero and the last point."""
    closed = {e.sender for e in conn.zero_windows}
    out: dict[str, list[list[float]]] = {}
    for side in sorted(closed):
        points: list[list[float]] = []
        for seg in conn.segments:
            if seg.sender != side or seg.has("RST") or seg.window_bytes is None:
                continue
            if not points or points[-1][1] != seg.window_bytes:
                points.append([round(seg.time - conn.start_time, 6), seg.window_bytes])
        if len(points) > WINDOW_POINTS:
            step = len(points) / WINDOW_POINTS
            picked = {int(i * step) for i in range(WINDOW_POINTS)} | {len(points) - 1}
            picked |= {i for i, p in enumerate(points) if p[1] == 0}
            points = [p for i, p in enumerate(points) if i in picked]
        out[side] = points
    return out


def _timeline(conn: TcpConnection) -> dict[str, Any]:
    """When the connection reached each stage, in seconds after its first segment: every
    SYN the client sent (more than one: the SYN was retransmitted), the handshake's end,
    the server's first data (its first reply), each side's first FIN, the first RST and
    the last segment. None where the stage was not seen."""
    start = conn.start_time

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - start, 6)

    syns = [s.time for s in conn.segments if s.sender == "client" and s.flags == ("SYN",)]
    reply = next((s.time for s in conn.segments if s.sender == "server" and s.payload_len), None)
    at = {s.index: s.time for s in conn.segments}
    rst = next((s.time for s in conn.segments if s.has("RST")), None)
    cl = conn.close
    return {
        "syns": [rel(t) for t in syns],
        "handshake_done": rel(conn.handshake.ack_time) if conn.handshake.ok else None,
        "first_reply": rel(reply),
        "client_fin": rel(at.get(cl.client_fin_index)) if cl.client_fin_index else None,
        "server_fin": rel(at.get(cl.server_fin_index)) if cl.server_fin_index else None,
        "rst": rel(rst),
        "end": rel(conn.end_time),
    }


def _handshake(conn: TcpConnection) -> dict[str, Any]:
    hs = conn.handshake
    return {
        "ok": hs.ok,
        "reason": hs.reason,
        "client_isn": hs.client_isn,
        "server_isn": hs.server_isn,
        "mss": {"client": hs.client_mss, "server": hs.server_mss},
        "wscale": {"client": hs.client_wscale, "server": hs.server_wscale},
        "windows": {"client": hs.client_window, "server": hs.server_window},
        "window_scaling": hs.window_scaling,
        "sack_permitted": {"client": hs.client_sack_permitted, "server": hs.server_sack_permitted},
        "timestamps": {"client": hs.client_timestamps, "server": hs.server_timestamps},
        "syn_retransmissions": hs.syn_retransmissions,
        "rtt": (
            round(hs.ack_time - hs.syn_time, 6)
            if hs.ack_time is not None and hs.syn_time is not None
            else None
        ),
    }


def _close(conn: TcpConnection, who: Mapping[str, str | None]) -> dict[str, Any]:
    cl = conn.close
    return {
        "kind": cl.kind,
        "complete": cl.complete,
        "first_fin_by": who[cl.first_fin_by] if cl.first_fin_by else None,
        "first_fin_side": cl.first_fin_by,
        "reset_by": who[cl.reset_by] if cl.reset_by else None,
        "time_wait_by": [who[side] for side in cl.time_wait_by],
        "steps": [s.description for s in cl.steps],
    }


def _tcp_record(
    number: int,
    group: Sequence[Sighting],
    hosts: Mapping[str, str],
    index: _ScenarioIndex,
    topology: Topology,
) -> dict[str, Any]:
    first = group[0].conn
    assert isinstance(first, TcpConnection)
    client_node = hosts.get(first.client.ip)
    prime = _primary(group, client_node)
    conn = prime.conn
    assert isinstance(conn, TcpConnection)
    server_node = hosts.get(conn.server.ip)
    who: dict[str, str | None] = {
        "client": client_node or conn.client.ip,
        "server": server_node or conn.server.ip,
    }
    segments, omitted = _segments(conn)
    return {
        "id": f"tcp-{number}",
        "protocol": "tcp",
        "client": {"node": client_node, "ip": conn.client.ip, "port": conn.client.port},
        "server": {"node": server_node, "ip": conn.server.ip, "port": conn.server.port},
        "service": index.service_of(conn.server, "tcp", topology),
        "scenario": index.scenario(conn.client, conn.server, "tcp", client_node),
        "handshake": _handshake(conn),
        "close": _close(conn, who),
        "bytes": {"client": conn.client_bytes, "server": conn.server_bytes},
        "retransmissions": len(conn.retransmissions),
        "zero_windows": len(conn.zero_windows),
        "zero_window_probes": len(conn.zero_window_probes),
        "window_updates": len(conn.window_updates),
        "syn_retransmissions": conn.handshake.syn_retransmissions,
        "window_events": _events(conn),
        "window_series": _window_series(conn),
        "timeline": _timeline(conn),
        "start": conn.start_time,
        "duration": round(conn.duration, 6),
        "seen_in": [s.capture for s in group],
        "evidence": prime.capture,
        "path": _path(group),
        "segment_count": len(conn.segments),
        "segments_omitted": omitted,
        "segments": segments,
    }


# -- entry points ----------------------------------------------------------------------------------


def connection_records(
    out_dir: Path, topology: Topology, run: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every TCP connection in the folder's captures, one record per connection, in order
    of first appearance (see the module docstring for the fields' sources)."""
    return _records(out_dir, topology, run)[0]


def connection_evidence(
    out_dir: Path, topology: Topology, run: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(connections, udp_flows)``: the TCP records of :func:`connection_records` and one
    record per UDP flow, reading each capture once."""
    return _records(out_dir, topology, run)


def _records(
    out_dir: Path, topology: Topology, run: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    tcp, udp = _sightings(out_dir, run)
    hosts = _host_names(topology)
    index = _ScenarioIndex.build(topology, run)
    groups = _group(tcp)
    conns = [_tcp_record(i + 1, g, hosts, index, topology) for i, g in enumerate(groups)]
    flows = _udp_records(udp, hosts, index, topology)
    return conns, flows


def _udp_records(
    sightings: Sequence[Sighting],
    hosts: Mapping[str, str],
    index: _ScenarioIndex,
    topology: Topology,
) -> list[dict[str, Any]]:
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
            {
                "id": f"udp-{number}",
                "protocol": "udp",
                "client": {
                    "node": hosts.get(flow.client.ip),
                    "ip": flow.client.ip,
                    "port": flow.client.port,
                },
                "server": {
                    "node": hosts.get(flow.server.ip),
                    "ip": flow.server.ip,
                    "port": flow.server.port,
                },
                "service": index.service_of(flow.server, "udp", topology),
                "scenario": index.scenario(flow.client, flow.server, "udp", client_node),
                "datagrams": {"client": flow.client_datagrams, "server": flow.server_datagrams},
                "bytes": {"client": flow.client_bytes, "server": flow.server_bytes},
                "sizes": list(flow.sizes[:50]),
                "start": flow.start_time,
                "duration": round(flow.end_time - flow.start_time, 6),
                "seen_in": [s.capture for s in group],
                "evidence": best.capture,
            }
        )
    return out
