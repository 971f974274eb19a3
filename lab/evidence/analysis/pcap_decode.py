"""Decoding one record: link layer (Ethernet, cooked SLL/SLL2, raw IP), IP, then TCP/UDP."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any

import dpkt

from lab.evidence.analysis.packet import PAYLOAD_KEEP, Packet, TcpOptions
from lab.evidence.analysis.pcap_files import Record

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
# Some platforms write DLT_RAW's numeric value (12 or 14) instead of LINKTYPE_RAW.
_RAW_ALIASES = {12, 14, LINKTYPE_RAW}

LINKTYPE_NAMES = {
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_RAW: "raw IP",
    12: "raw IP",
    14: "raw IP",
    LINKTYPE_LINUX_SLL: "Linux cooked (SLL)",
    LINKTYPE_LINUX_SLL2: "Linux cooked v2 (SLL2)",
}

# Linux packet types in cooked headers (PACKET_HOST, ... in <linux/if_packet.h>).
_DIRECTIONS = {0: "in", 1: "broadcast", 2: "multicast", 3: "other-host", 4: "out"}


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


@dataclass(frozen=True)
class _Link:
    src_mac: str | None
    dst_mac: str | None
    direction: str | None
    interface_index: int | None
    ethertype: int | None
    l3: bytes | dpkt.Packet


def _link(linktype: int, data: bytes) -> _Link | None:
    """Strip the link layer. None for a frame too short to carry its header."""
    if linktype == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return None
        eth = dpkt.ethernet.Ethernet(data)  # also unwraps 802.1Q tags
        return _Link(_mac(eth.src), _mac(eth.dst), None, None, eth.type, eth.data)
    if linktype == LINKTYPE_LINUX_SLL:
        if len(data) < 16:
            return None
        pkttype, _hatype, halen, addr, proto = struct.unpack(">HHH8sH", data[:16])
        src = _mac(addr[:halen]) if halen == 6 else None
        return _Link(src, None, _DIRECTIONS.get(pkttype), None, proto, data[16:])
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(data) < 20:
            return None
        proto, _res, ifindex, _hatype, pkttype, halen, addr = struct.unpack(">HHiHBB8s", data[:20])
        src = _mac(addr[:halen]) if halen == 6 else None
        return _Link(src, None, _DIRECTIONS.get(pkttype), ifindex, proto, data[20:])
    if linktype in _RAW_ALIASES:
        if not data:
            return None
        version = data[0] >> 4
        ethertype = {4: 0x0800, 6: 0x86DD}.get(version)
        return _Link(None, None, None, None, ethertype, data)
    return None  # an unsupported link type: the reader refuses such a file before decoding


def _tcp_options(raw: bytes) -> TcpOptions:
    mss = wscale = None
    sack = False
    ts: tuple[int, int] | None = None
    blocks: tuple[tuple[int, int], ...] = ()
    try:
        parsed = dpkt.tcp.parse_opts(raw)
    except (dpkt.UnpackError, IndexError):
        return TcpOptions()
    for option in parsed:
        if option is None:  # dpkt's mark for an option cut short: the rest is unreadable
            break
        kind, value = option
        if kind == dpkt.tcp.TCP_OPT_MSS and len(value) == 2:
            mss = struct.unpack(">H", value)[0]
        elif kind == dpkt.tcp.TCP_OPT_WSCALE and len(value) == 1:
            wscale = value[0]
        elif kind == dpkt.tcp.TCP_OPT_SACKOK:
            sack = True
        elif kind == dpkt.tcp.TCP_OPT_TIMESTAMP and len(value) == 8:
            ts = struct.unpack(">II", value)
        elif kind == dpkt.tcp.TCP_OPT_SACK and value and len(value) % 8 == 0:
            edges = struct.unpack(f">{len(value) // 4}I", value)
            blocks = tuple(zip(edges[::2], edges[1::2], strict=True))
    return TcpOptions(mss=mss, wscale=wscale, sack_permitted=sack, timestamp=ts, sack=blocks)


def _ip_layer(link: _Link) -> dpkt.ip.IP | dpkt.ip6.IP6 | None:
    if isinstance(link.l3, dpkt.ip.IP | dpkt.ip6.IP6):
        return link.l3
    raw = bytes(link.l3)
    try:
        if link.ethertype == 0x0800:
            return dpkt.ip.IP(raw)
        if link.ethertype == 0x86DD:
            return dpkt.ip6.IP6(raw)
    except (dpkt.UnpackError, struct.error):
        return None
    return None


def decode(index: int, rec: Record, linktype: int) -> Packet | None:
    """The record as a Packet; None for a frame that carries no IP packet."""
    link = _link(linktype, rec.data)
    if link is None:
        return None
    ip = _ip_layer(link)
    if ip is None:
        return None
    header = _ip_header(ip)
    common: dict[str, Any] = {
        "index": index,
        "time": rec.time,
        "captured_len": len(rec.data),
        "wire_len": rec.wire_len,
        "src_mac": link.src_mac,
        "dst_mac": link.dst_mac,
        "direction": link.direction,
        "interface_index": link.interface_index,
        "ip_version": header.version,
        "src_ip": header.src,
        "dst_ip": header.dst,
        "ttl": header.ttl,
        "ip_id": header.ip_id,
    }
    return _transport(ip.data, header, common)


@dataclass(frozen=True)
class _IpHeader:
    version: int
    src: str
    dst: str
    ttl: int  # the hop limit for IPv6
    ip_id: int
    proto: int
    first_fragment: bool  # only the first fragment carries the transport header
    payload_len: int  # from the header, true even when the snapshot length cut the bytes


def _ip_header(ip: dpkt.ip.IP | dpkt.ip6.IP6) -> _IpHeader:
    if isinstance(ip, dpkt.ip.IP):
        return _IpHeader(
            4,
            socket.inet_ntop(socket.AF_INET, ip.src),
            socket.inet_ntop(socket.AF_INET, ip.dst),
            ip.ttl,
            ip.id,
            ip.p,
            ip.offset == 0,
            ip.len - ip.hl * 4 if ip.len else len(bytes(ip.data)),
        )
    return _IpHeader(
        6,
        socket.inet_ntop(socket.AF_INET6, ip.src),
        socket.inet_ntop(socket.AF_INET6, ip.dst),
        ip.hlim,
        0,
        ip.nxt if not hasattr(ip, "p") else ip.p,
        True,
        ip.plen - _ip6_ext_len(ip) if ip.plen else len(bytes(ip.data)),
    )


def _transport(seg: object, h: _IpHeader, common: dict[str, Any]) -> Packet:
    """The packet with its TCP or UDP fields, or named by its protocol for anything else."""
    if h.proto == dpkt.ip.IP_PROTO_TCP and h.first_fragment and isinstance(seg, dpkt.tcp.TCP):
        return Packet(
            **common,
            protocol="tcp",
            src_port=seg.sport,
            dst_port=seg.dport,
            tcp_flags=seg.flags,
            seq=seg.seq,
            ack=seg.ack,
            window=seg.win,
            options=_tcp_options(seg.opts),
            payload_len=max(0, h.payload_len - seg.off * 4),
            payload=bytes(seg.data[:PAYLOAD_KEEP]),
        )
    if h.proto == dpkt.ip.IP_PROTO_UDP and h.first_fragment and isinstance(seg, dpkt.udp.UDP):
        return Packet(
            **common,
            protocol="udp",
            src_port=seg.sport,
            dst_port=seg.dport,
            payload_len=max(0, seg.ulen - 8),
            payload=bytes(seg.data[:PAYLOAD_KEEP]),
        )
    proto = h.proto
    names = {dpkt.ip.IP_PROTO_ICMP: "icmp", dpkt.ip.IP_PROTO_ICMP6: "icmp6"}
    name = names.get(proto, "tcp" if proto == 6 else "udp" if proto == 17 else f"ip-{proto}")
    if name in {"tcp", "udp"}:
        name += "-fragment"  # a non-first fragment: no ports
    return Packet(**common, protocol=name, payload_len=h.payload_len)


def _ip6_ext_len(ip: dpkt.ip6.IP6) -> int:
    """Bytes of IPv6 extension headers before the transport header."""
    return sum(len(bytes(h)) for h in getattr(ip, "extension_hdrs", {}).values() if h)
