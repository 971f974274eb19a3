"""One TCP connection seen in two captures (e.g. on both sides of a router): matching, and
what changed between the two sightings of the same packets (MACs, IPs, TTL).

Connections match when their 4-tuples are equal and both ISNs are equal (or, when one
capture missed the handshake, on the 4-tuple alone); a connection whose addresses were
rewritten (NAT) still matches on both ISNs and the server port. The same packet in both
captures is found by its seq, ack and flags; the upstream sighting is the one with the
higher TTL (each router decrements it), or the earlier one when TTLs are equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lab.evidence.analysis.common import Endpoint, ToDict
from lab.evidence.analysis.tcp import CLIENT, SERVER, Segment, TcpConnection


@dataclass(frozen=True)
class Sighting(ToDict):
    """One packet as one capture saw it."""

    capture: str
    index: int
    time: float
    src_mac: str | None
    dst_mac: str | None
    src_ip: str
    dst_ip: str
    ttl: int


@dataclass(frozen=True)
class HopChange(ToDict):
    """The same packet seen ``upstream`` then ``downstream``. ``macs_rewritten`` is None
    when a capture has no MACs (cooked capture) to compare; ``ttl_change`` is
    downstream TTL minus upstream TTL (-1 per router)."""

    direction: str
    flags: tuple[str, ...]
    upstream: Sighting
    downstream: Sighting
    ips_rewritten: bool
    macs_rewritten: bool | None
    ttl_change: int
    summary: str


@dataclass(frozen=True)
class PathMatch(ToDict):
    capture_a: str
    capture_b: str
    client: Endpoint
    server: Endpoint
    matched_by: str
    client_to_server: HopChange | None
    server_to_client: HopChange | None
    summary: str


def _sighting(capture: str, seg: Segment, conn: TcpConnection) -> Sighting:
    src, dst = (conn.client, conn.server) if seg.sender == CLIENT else (conn.server, conn.client)
    return Sighting(capture, seg.index, seg.time, seg.src_mac, seg.dst_mac, src.ip, dst.ip, seg.ttl)


def _describe(up: Sighting, down: Sighting) -> tuple[bool, bool | None, str]:
    ips = (up.src_ip, up.dst_ip) != (down.src_ip, down.dst_ip)
    macs: bool | None = None
    if None not in (up.src_mac, up.dst_mac, down.src_mac, down.dst_mac):
        macs = (up.src_mac, up.dst_mac) != (down.src_mac, down.dst_mac)
    elif up.src_mac is not None and down.src_mac is not None:
        macs = up.src_mac != down.src_mac  # cooked captures keep only the sender's MAC
    parts = [
        "IPs rewritten" if ips else "IPs unchanged",
        {True: "MACs rewritten", False: "MACs unchanged", None: "MACs not captured"}[macs],
        f"TTL {up.ttl} -> {down.ttl}",
    ]
    return ips, macs, ", ".join(parts)


def _hop(
    direction: str, conn_a: TcpConnection, name_a: str, conn_b: TcpConnection, name_b: str
) -> HopChange | None:
    sender = CLIENT if direction == "client->server" else SERVER
    in_b = {(s.seq, s.ack, s.flags): s for s in conn_b.segments if s.sender == sender}
    for seg in conn_a.segments:
        if seg.sender != sender:
            continue
        other = in_b.get((seg.seq, seg.ack, seg.flags))
        if other is None:
            continue
        a, b = _sighting(name_a, seg, conn_a), _sighting(name_b, other, conn_b)
        up, down = (a, b) if (a.ttl, -a.time) >= (b.ttl, -b.time) else (b, a)
        ips, macs, text = _describe(up, down)
        return HopChange(direction, seg.flags, up, down, ips, macs, down.ttl - up.ttl, text)
    return None


def _matched_by(a: TcpConnection, b: TcpConnection) -> str | None:
    isns_a = (a.handshake.client_isn, a.handshake.server_isn)
    isns_b = (b.handshake.client_isn, b.handshake.server_isn)
    both_isns = None not in isns_a and None not in isns_b
    if a.four_tuple == b.four_tuple:
        if not both_isns:
            return "4-tuple"
        return "4-tuple and ISNs" if isns_a == isns_b else None
    if both_isns and isns_a == isns_b and a.server.port == b.server.port:
        return "ISNs and server port (addresses rewritten)"
    return None


def match_connections(
    conns_a: Sequence[TcpConnection],
    conns_b: Sequence[TcpConnection],
    name_a: str = "a",
    name_b: str = "b",
) -> list[PathMatch]:
    """Every connection of capture A also seen in capture B, each B connection used once."""
    used: set[int] = set()
    out = []
    for ca in conns_a:
        for i, cb in enumerate(conns_b):
            how = None if i in used else _matched_by(ca, cb)
            if how is None:
                continue
            used.add(i)
            c2s = _hop("client->server", ca, name_a, cb, name_b)
            s2c = _hop("server->client", ca, name_a, cb, name_b)
            hop = c2s or s2c
            out.append(
                PathMatch(
                    capture_a=name_a,
                    capture_b=name_b,
                    client=ca.client,
                    server=ca.server,
                    matched_by=how,
                    client_to_server=c2s,
                    server_to_client=s2c,
                    summary=hop.summary if hop else "no packet seen in both captures",
                )
            )
            break
    return out
