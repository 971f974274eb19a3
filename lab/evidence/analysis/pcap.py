"""Reading capture files into :class:`Packet` records.

Supported files: classic pcap (micro- or nanosecond, either byte order) and pcapng (one link
type per file: the first interface's), both read by ``pcap_files`` so that damage (a record
cut short by a killed tcpdump, a length no record can have) is located and reported, never
silently dropped.

Supported link types: Ethernet (1), Linux cooked SLL (113) and SLL2 (276) as written by
``tcpdump -i any``, and raw IP (101, also 12/14). Frames that are not IPv4/IPv6 (ARP, ...) are
counted by :func:`pcap_ok` but left out of :func:`read_packets`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import dpkt

from lab.evidence.analysis.files import Damage, EvidenceFileError
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
from lab.evidence.analysis.pcap_files import open_capture

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_NAMES",
    "LINKTYPE_RAW",
    "PAYLOAD_KEEP",
    "TCP_FLAG_NAMES",
    "CaptureError",
    "CaptureRead",
    "Packet",
    "TcpOptions",
    "flows_between",
    "link_type",
    "pcap_ok",
    "read_capture",
    "read_packets",
    "unique_packets",
]


@dataclass(frozen=True)
class CaptureRead:
    """A capture file read: its ``frames`` (every record), the IPv4/IPv6 ``packets`` among
    them, and where the file is damaged (empty for an intact file)."""

    kind: str
    linktype: int
    frames: int
    packets: list[Packet]
    damage: list[Damage]

    def describe(self) -> str:
        """One line: "pcap, Ethernet (linktype 1), 12 frames, 12 IP" and any damage."""
        text = (
            f"{self.kind}, {LINKTYPE_NAMES[self.linktype]} (linktype {self.linktype}), "
            f"{self.frames} frames, {len(self.packets)} IP"
        )
        return text + "".join(f", damaged: {d}" for d in self.damage)


def read_capture(path: str | Path) -> CaptureRead:
    """Read and decode a capture. Raises :class:`EvidenceFileError` (:class:`CaptureError`
    for a file that is not a supported capture); damage inside a readable capture is data."""
    p = Path(path)
    cap = open_capture(p)
    if cap.linktype not in LINKTYPE_NAMES:
        raise CaptureError(p, f"unsupported link type {cap.linktype}")
    packets = []
    for i, rec in enumerate(cap.records, start=1):
        try:
            packet = decode(i, rec, cap.linktype)
        except (dpkt.UnpackError, struct.error, ValueError, IndexError):
            packet = None  # malformed frame: counted, not decoded
        if packet is not None:
            packets.append(packet)
    return CaptureRead(cap.kind, cap.linktype, len(cap.records), packets, list(cap.damage))


def read_packets(path: str | Path) -> list[Packet]:
    """Every IPv4/IPv6 packet of a capture, in file order, up to any damage. Raises
    :class:`EvidenceFileError` for a file that is not a supported capture."""
    return read_capture(path).packets


def link_type(path: str | Path) -> int:
    """The capture's link type number (1 Ethernet, 113 SLL, 276 SLL2, ...)."""
    return open_capture(Path(path)).linktype


def pcap_ok(path: str | Path, min_packets: int = 0) -> tuple[bool, str]:
    """Whether a file is an intact capture with at least ``min_packets`` frames, and a
    one-line description ("pcap, Ethernet (linktype 1), 12 frames, 12 IP") or the reason."""
    p = Path(path)
    try:
        read = read_capture(p)
    except EvidenceFileError as exc:
        return False, str(exc)
    text = read.describe()
    if read.damage:
        return False, f"{p}: {text}"
    if read.frames < min_packets:
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
