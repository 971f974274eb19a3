"""Reading capture files into :class:`Packet` records.

Supported files: classic pcap (micro- or nanosecond, either byte order; read here with
``struct`` so that a record cut short by a killed tcpdump is detected, not fatal) and pcapng
(through ``dpkt.pcapng``, which reports one link type per file: the first interface's).

Supported link types: Ethernet (1), Linux cooked SLL (113) and SLL2 (276) as written by
``tcpdump -i any``, and raw IP (101, also 12/14). Frames that are not IPv4/IPv6 (ARP, ...) are
counted by :func:`pcap_ok` but left out of :func:`read_packets`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import dpkt

from lab.evidence.analysis.packet import (
    PAYLOAD_KEEP,
    TCP_FLAG_NAMES,
    CaptureError,
    Packet,
    TcpOptions,
)
from lab.evidence.analysis.pcap_decode import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NAMES,
    LINKTYPE_RAW,
    decode,
)
from lab.evidence.analysis.pcap_files import PCAPNG_MAGIC, open_capture

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_NAMES",
    "LINKTYPE_RAW",
    "PAYLOAD_KEEP",
    "TCP_FLAG_NAMES",
    "CaptureError",
    "Packet",
    "TcpOptions",
    "flows_between",
    "link_type",
    "pcap_ok",
    "read_packets",
    "unique_packets",
]


def _iter_packets(path: Path) -> tuple[int, Iterator[Packet | None], list[str]]:
    linktype, records, problems = open_capture(path)
    if linktype not in LINKTYPE_NAMES:
        raise CaptureError(f"{path}: unsupported link type {linktype}")

    def gen() -> Iterator[Packet | None]:
        for i, rec in enumerate(records, start=1):
            try:
                yield decode(i, rec, linktype)
            except (dpkt.UnpackError, struct.error, ValueError):
                yield None  # malformed frame: counted, not decoded

    return linktype, gen(), problems


def read_packets(path: str | Path) -> list[Packet]:
    """Every IPv4/IPv6 packet of a capture, in file order. Raises :class:`CaptureError`
    for a file that is not a supported capture; a truncated last record is dropped."""
    _, packets, _ = _iter_packets(Path(path))
    return [p for p in packets if p is not None]


def link_type(path: str | Path) -> int:
    """The capture's link type number (1 Ethernet, 113 SLL, 276 SLL2, ...)."""
    linktype, _, _ = open_capture(Path(path))
    return linktype


def pcap_ok(path: str | Path, min_packets: int = 0) -> tuple[bool, str]:
    """Whether a file is a readable capture with at least ``min_packets`` frames, and a
    one-line description ("pcap, Ethernet (linktype 1), 12 frames, 12 IP") or the reason."""
    p = Path(path)
    if not p.is_file():
        return False, f"{p}: no such file"
    try:
        linktype, packets, problems = _iter_packets(p)
        frames = ip_packets = 0
        for pkt in packets:
            frames += 1
            ip_packets += pkt is not None
    except (CaptureError, OSError) as exc:
        return False, str(exc)
    with p.open("rb") as probe:
        kind = "pcapng" if probe.read(4) == PCAPNG_MAGIC else "pcap"
    text = (
        f"{kind}, {LINKTYPE_NAMES[linktype]} (linktype {linktype}), "
        f"{frames} frames, {ip_packets} IP"
    )
    if problems:
        text += ", " + ", ".join(problems)
    if frames < min_packets:
        return False, f"{p}: {text}: expected at least {min_packets} frames"
    return True, text


def flows_between(
    packets: list[Packet],
    ip_a: str,
    ip_b: str | None,
    port: int,
    protocol: str = "tcp",
) -> list[Packet]:
    """The packets of ``protocol`` between ``ip_a`` and ``ip_b`` (any peer when None), in
    either direction, with ``port`` on either side: "does this capture hold the scenario's
    traffic to server ip:port?" is ``bool(flows_between(pkts, server_ip, client_ip, port))``."""
    out = []
    for p in packets:
        if p.protocol != protocol:
            continue
        forward = p.src_ip == ip_a and ip_b in (None, p.dst_ip)
        backward = p.dst_ip == ip_a and ip_b in (None, p.src_ip)
        if (forward or backward) and port in (p.src_port, p.dst_port):
            out.append(p)
    return out


# A copy of the same IP packet seen again within this many seconds on another interface
# or in the other direction (``tcpdump -i any`` on a router or on lo) is the same packet.
_COPY_WINDOW = 1.0


def unique_packets(packets: list[Packet]) -> list[Packet]:
    """Drop the second sighting of a packet in a cooked ``-i any`` capture.

    There the same IP packet appears once per interface it crosses (in on eth0 and out on
    eth1 of a router, with the TTL one lower; out and in on lo). Two records are copies when
    their IP and transport headers match (IP id, ports, seq, ack, flags, length) and they
    differ in interface, direction or TTL. A real retransmission is sent on the same
    interface in the same direction with a new IP id, so it is kept. Ethernet captures
    (one interface, no direction) are returned unchanged.
    """
    seen: dict[tuple[object, ...], list[Packet]] = {}
    out: list[Packet] = []
    for p in packets:
        if p.direction is None and p.interface_index is None:
            out.append(p)
            continue
        key = (
            p.src_ip,
            p.dst_ip,
            p.ip_id,
            p.protocol,
            p.src_port,
            p.dst_port,
            p.seq,
            p.ack,
            p.tcp_flags,
            p.payload_len,
        )
        earlier = seen.setdefault(key, [])
        if any(
            p.time - e.time <= _COPY_WINDOW
            and (e.interface_index, e.direction, e.ttl) != (p.interface_index, p.direction, p.ttl)
            for e in earlier
        ):
            continue
        earlier.append(p)
        out.append(p)
    return out
