"""TCP connections reconstructed from packets: handshake, segments, close, retransmissions,
zero-window, zero-window-probe and window-update events.

The client is the side that sent the SYN (without ACK). When the capture began after the
handshake, the client is the receiver of a SYN-ACK, else the side with the higher port (the
ephemeral one). Sequence and acknowledgement numbers are made relative to each side's ISN
(its SYN's seq) or, without a SYN, to the first seq seen from that side, as Wireshark does.
"""

from __future__ import annotations

from collections.abc import Iterable

from lab.evidence.analysis.common import Endpoint
from lab.evidence.analysis.pcap import Packet, unique_packets
from lab.evidence.analysis.tcp_model import (
    CLIENT,
    CLOSE_KINDS,
    SERVER,
    Close,
    CloseStep,
    Handshake,
    Retransmission,
    Segment,
    TcpConnection,
    WindowEvent,
)
from lab.evidence.analysis.tcp_phases import close, handshake
from lab.evidence.analysis.tcp_segments import segments_of, zero_window_probes

__all__ = [
    "CLIENT",
    "CLOSE_KINDS",
    "SERVER",
    "Close",
    "CloseStep",
    "Handshake",
    "Retransmission",
    "Segment",
    "TcpConnection",
    "WindowEvent",
    "tcp_connections",
]


# -- grouping packets into connections -------------------------------------------------------


def _canonical(p: Packet) -> tuple[Endpoint, Endpoint]:
    a, b = p.src, p.dst
    return (a, b) if a <= b else (b, a)


def _group(packets: Iterable[Packet]) -> list[list[Packet]]:
    """Packets per connection, in order of first packet. A SYN with a new ISN on a 4-tuple
    already used starts a new connection (port reuse after TIME_WAIT)."""
    current: dict[tuple[Endpoint, Endpoint], list[Packet]] = {}
    groups: list[list[Packet]] = []
    for p in packets:
        if p.protocol != "tcp":
            continue
        key = _canonical(p)
        group = current.get(key)
        if group is not None and p.has("SYN") and not p.has("ACK"):
            syns = [q for q in group if q.has("SYN") and not q.has("ACK")]
            ended = any(q.has("FIN") or q.has("RST") for q in group)
            if (syns and syns[0].seq != p.seq) or (not syns and ended):
                group = None
        if group is None:
            group = []
            groups.append(group)
            current[key] = group
        group.append(p)
    return groups


def _roles(group: list[Packet]) -> tuple[Endpoint, Endpoint]:
    for p in group:
        if p.has("SYN") and not p.has("ACK"):
            return p.src, p.dst
    for p in group:
        if p.has("SYN") and p.has("ACK"):
            return p.dst, p.src
    first = group[0]
    if first.src.port != first.dst.port:
        return (first.src, first.dst) if first.src.port > first.dst.port else (first.dst, first.src)
    return first.src, first.dst


# -- entry point ---------------------------------------------------------------------------------


def tcp_connections(packets: Iterable[Packet]) -> list[TcpConnection]:
    """Every TCP connection in the packets, in order of its first packet. Copies of one
    packet in a cooked ``-i any`` capture are counted once (see ``unique_packets``)."""
    conns = []
    for group in _group(unique_packets([p for p in packets if p.protocol == "tcp"])):
        client, server = _roles(group)
        hs = handshake(group, client)
        stream = segments_of(group, client, hs)
        segments = stream.segments
        conns.append(
            TcpConnection(
                client=client,
                server=server,
                handshake=hs,
                segments=tuple(segments),
                close=close(segments),
                retransmissions=tuple(stream.retransmissions),
                zero_windows=tuple(stream.zero_windows),
                window_updates=tuple(stream.window_updates),
                zero_window_probes=tuple(zero_window_probes(segments)),
                client_bytes=stream.client_bytes,
                server_bytes=stream.server_bytes,
                start_time=group[0].time,
                end_time=group[-1].time,
                handshake_seen=hs.syn_index is not None,
            )
        )
    return conns
