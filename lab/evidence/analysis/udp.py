"""UDP flows: the datagrams exchanged between two endpoints. There is no handshake and no
close; the client is the sender of the flow's first datagram."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lab.evidence.analysis.common import Endpoint, ToDict
from lab.evidence.analysis.pcap import Packet, unique_packets


@dataclass(frozen=True)
class UdpDatagram(ToDict):
    """``length`` is the UDP payload length from the header; ``payload`` its first bytes."""

    index: int
    time: float
    sender: str
    length: int
    ttl: int
    src_mac: str | None
    dst_mac: str | None
    payload: bytes = b""


@dataclass(frozen=True)
class UdpFlow(ToDict):
    client: Endpoint
    server: Endpoint
    datagrams: tuple[UdpDatagram, ...]
    client_datagrams: int
    server_datagrams: int
    client_bytes: int
    server_bytes: int
    start_time: float
    end_time: float

    @property
    def four_tuple(self) -> tuple[str, int, str, int]:
        return (self.client.ip, self.client.port, self.server.ip, self.server.port)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(d.length for d in self.datagrams)


def udp_flows(packets: Iterable[Packet]) -> list[UdpFlow]:
    """Every UDP flow (one per unordered endpoint pair), in order of first datagram.
    Non-first IP fragments carry no ports and are not counted as datagrams."""
    groups: dict[tuple[Endpoint, Endpoint], list[Packet]] = {}
    for p in unique_packets([p for p in packets if p.protocol == "udp"]):
        a, b = p.src, p.dst
        groups.setdefault((a, b) if a <= b else (b, a), []).append(p)
    flows = []
    for group in groups.values():
        client, server = group[0].src, group[0].dst
        grams = tuple(
            UdpDatagram(
                index=p.index,
                time=p.time,
                sender="client" if p.src == client else "server",
                length=p.payload_len,
                ttl=p.ttl,
                src_mac=p.src_mac,
                dst_mac=p.dst_mac,
                payload=p.payload,
            )
            for p in group
        )
        c = [d for d in grams if d.sender == "client"]
        s = [d for d in grams if d.sender == "server"]
        flows.append(
            UdpFlow(
                client=client,
                server=server,
                datagrams=grams,
                client_datagrams=len(c),
                server_datagrams=len(s),
                client_bytes=sum(d.length for d in c),
                server_bytes=sum(d.length for d in s),
                start_time=group[0].time,
                end_time=group[-1].time,
            )
        )
    return flows
