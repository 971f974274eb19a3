"""Reading capture files into :class:`Packet` records.

Supported files: classic pcap (micro- or nanosecond, either byte order; read here with
``struct`` so that a record cut short by a killed tcpdump is detected, not fatal) and pcapng
(through ``dpkt.pcapng``, which reports one link type per file: the first interface's).

Supported link types: Ethernet (1), Linux cooked SLL (113) and SLL2 (276) as written by
``tcpdump -i any``, and raw IP (101, also 12/14). Frames that are not IPv4/IPv6 (ARP, ...) are
counted by :func:`pcap_ok` but left out of :func:`read_packets`.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dpkt

from lab.evidence.analysis.common import Endpoint, ToDict

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

# Bytes of payload kept per packet: enough to show a request/response line in a report.
PAYLOAD_KEEP = 256

TCP_FLAG_NAMES = (
    (dpkt.tcp.TH_SYN, "SYN"),
    (dpkt.tcp.TH_FIN, "FIN"),
    (dpkt.tcp.TH_RST, "RST"),
    (dpkt.tcp.TH_PUSH, "PSH"),
    (dpkt.tcp.TH_ACK, "ACK"),
    (dpkt.tcp.TH_URG, "URG"),
    (dpkt.tcp.TH_ECE, "ECE"),
    (dpkt.tcp.TH_CWR, "CWR"),
)

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


class CaptureError(ValueError):
    """A file is not a capture this module can read (bad magic, unsupported link type)."""


@dataclass(frozen=True)
class TcpOptions(ToDict):
    """The TCP options the analysis reports. ``timestamp`` is (TSval, TSecr)."""

    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    timestamp: tuple[int, int] | None = None


@dataclass(frozen=True)
class Packet(ToDict):
    """One IPv4/IPv6 frame of a capture.

    ``index`` is the 1-based frame number counting every record of the file (so it equals
    tshark's ``frame.number``). MACs are ``aa:bb:..`` strings; a cooked capture has only the
    sender's MAC (``dst_mac`` is None) and says per packet ``direction`` ("in", "out", ...)
    and, for SLL2, ``interface_index``. ``ttl`` is the IPv6 hop limit for IPv6.
    ``payload_len`` is the transport payload length from the headers (true even when the
    snapshot length cut the bytes); ``payload`` keeps at most :data:`PAYLOAD_KEEP` bytes.
    TCP fields are None for other protocols; ``window`` is the raw (unscaled) header value.
    """

    index: int
    time: float
    captured_len: int
    wire_len: int
    src_mac: str | None
    dst_mac: str | None
    direction: str | None
    interface_index: int | None
    ip_version: int
    src_ip: str
    dst_ip: str
    ttl: int
    ip_id: int
    protocol: str
    src_port: int | None = None
    dst_port: int | None = None
    tcp_flags: int | None = None
    seq: int | None = None
    ack: int | None = None
    window: int | None = None
    options: TcpOptions | None = None
    payload_len: int = 0
    payload: bytes = b""

    @property
    def src(self) -> Endpoint:
        return Endpoint(self.src_ip, self.src_port or 0)

    @property
    def dst(self) -> Endpoint:
        return Endpoint(self.dst_ip, self.dst_port or 0)

    @property
    def flags(self) -> tuple[str, ...]:
        """TCP flag names set, in the order SYN FIN RST PSH ACK URG ECE CWR."""
        if self.tcp_flags is None:
            return ()
        return tuple(name for bit, name in TCP_FLAG_NAMES if self.tcp_flags & bit)

    def has(self, flag: str) -> bool:
        return flag in self.flags


@dataclass(frozen=True)
class _Record:
    time: float
    data: bytes
    wire_len: int


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _read_classic(f: object, head: bytes) -> tuple[int, Iterator[_Record], list[str]]:
    """Classic pcap: header already read (24 bytes). Problems found go into the list."""
    order, unit = _PCAP_MAGICS[head[:4]]
    linktype = struct.unpack(order + "I", head[20:24])[0] & 0x0FFFFFFF
    problems: list[str] = []
    reader = f.read  # type: ignore[attr-defined]

    def records() -> Iterator[_Record]:
        while True:
            rec = reader(16)
            if not rec:
                return
            if len(rec) < 16:
                problems.append("truncated last record header")
                return
            sec, frac, caplen, wirelen = struct.unpack(order + "IIII", rec)
            data = reader(caplen)
            if len(data) < caplen:
                problems.append("truncated last record")
                return
            yield _Record(sec + frac * unit, data, wirelen)

    return linktype, records(), problems


def _read_pcapng(path: Path) -> tuple[int, Iterator[_Record], list[str]]:
    f = path.open("rb")
    try:
        reader = dpkt.pcapng.Reader(f)
    except (ValueError, dpkt.UnpackError) as exc:
        f.close()
        raise CaptureError(f"{path}: unreadable pcapng ({exc})") from exc
    problems: list[str] = []

    def records() -> Iterator[_Record]:
        try:
            for ts, buf in reader:
                yield _Record(float(ts), bytes(buf), len(buf))
        except (dpkt.UnpackError, struct.error) as exc:
            problems.append(f"unreadable block ({exc})")
        finally:
            f.close()

    return int(reader.datalink()), records(), problems


def _open(path: Path) -> tuple[int, Iterator[_Record], list[str]]:
    with path.open("rb") as probe:
        head = probe.read(24)
    if head[:4] == _PCAPNG_MAGIC:
        return _read_pcapng(path)
    if len(head) < 24 or head[:4] not in _PCAP_MAGICS:
        raise CaptureError(f"{path}: not a pcap or pcapng file")
    f = path.open("rb")
    f.read(24)
    linktype, recs, problems = _read_classic(f, head)

    def closing() -> Iterator[_Record]:
        try:
            yield from recs
        finally:
            f.close()

    return linktype, closing(), problems


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
    raise CaptureError(f"unsupported link type {linktype}")


def _tcp_options(raw: bytes) -> TcpOptions:
    mss = wscale = None
    sack = False
    ts: tuple[int, int] | None = None
    try:
        parsed = dpkt.tcp.parse_opts(raw)
    except (dpkt.UnpackError, IndexError):
        return TcpOptions()
    for kind, value in parsed:
        if kind == dpkt.tcp.TCP_OPT_MSS and len(value) == 2:
            mss = struct.unpack(">H", value)[0]
        elif kind == dpkt.tcp.TCP_OPT_WSCALE and len(value) == 1:
            wscale = value[0]
        elif kind == dpkt.tcp.TCP_OPT_SACKOK:
            sack = True
        elif kind == dpkt.tcp.TCP_OPT_TIMESTAMP and len(value) == 8:
            ts = struct.unpack(">II", value)
    return TcpOptions(mss=mss, wscale=wscale, sack_permitted=sack, timestamp=ts)


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


def _decode(index: int, rec: _Record, linktype: int) -> Packet | None:
    link = _link(linktype, rec.data)
    if link is None:
        return None
    ip = _ip_layer(link)
    if ip is None:
        return None
    base = {
        "index": index,
        "time": rec.time,
        "captured_len": len(rec.data),
        "wire_len": rec.wire_len,
        "src_mac": link.src_mac,
        "dst_mac": link.dst_mac,
        "direction": link.direction,
        "interface_index": link.interface_index,
    }
    if isinstance(ip, dpkt.ip.IP):
        version, family = 4, socket.AF_INET
        ttl, ip_id, proto = ip.ttl, ip.id, ip.p
        # Only the first fragment carries the transport header.
        first_fragment = ip.offset == 0
        l3_payload_len = ip.len - ip.hl * 4 if ip.len else len(bytes(ip.data))
    else:
        version, family = 6, socket.AF_INET6
        ttl, ip_id, proto = ip.hlim, 0, ip.nxt if not hasattr(ip, "p") else ip.p
        first_fragment = True
        l3_payload_len = ip.plen - _ip6_ext_len(ip) if ip.plen else len(bytes(ip.data))
    common = dict(
        base,
        ip_version=version,
        src_ip=socket.inet_ntop(family, ip.src),
        dst_ip=socket.inet_ntop(family, ip.dst),
        ttl=ttl,
        ip_id=ip_id,
    )
    seg = ip.data
    if proto == dpkt.ip.IP_PROTO_TCP and first_fragment and isinstance(seg, dpkt.tcp.TCP):
        payload_len = max(0, l3_payload_len - seg.off * 4)
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
            payload_len=payload_len,
            payload=bytes(seg.data[:PAYLOAD_KEEP]),
        )
    if proto == dpkt.ip.IP_PROTO_UDP and first_fragment and isinstance(seg, dpkt.udp.UDP):
        return Packet(
            **common,
            protocol="udp",
            src_port=seg.sport,
            dst_port=seg.dport,
            payload_len=max(0, seg.ulen - 8),
            payload=bytes(seg.data[:PAYLOAD_KEEP]),
        )
    names = {dpkt.ip.IP_PROTO_ICMP: "icmp", dpkt.ip.IP_PROTO_ICMP6: "icmp6"}
    name = names.get(proto, "tcp" if proto == 6 else "udp" if proto == 17 else f"ip-{proto}")
    if name in {"tcp", "udp"}:
        name += "-fragment"  # a non-first fragment: no ports
    return Packet(**common, protocol=name, payload_len=l3_payload_len)


def _ip6_ext_len(ip: dpkt.ip6.IP6) -> int:
    """Bytes of IPv6 extension headers before the transport header."""
    return sum(len(bytes(h)) for h in getattr(ip, "extension_hdrs", {}).values() if h)


def _iter_packets(path: Path) -> tuple[int, Iterator[Packet | None], list[str]]:
    linktype, records, problems = _open(path)
    if linktype not in LINKTYPE_NAMES:
        raise CaptureError(f"{path}: unsupported link type {linktype}")

    def gen() -> Iterator[Packet | None]:
        for i, rec in enumerate(records, start=1):
            try:
                yield _decode(i, rec, linktype)
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
    linktype, _, _ = _open(Path(path))
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
        kind = "pcapng" if probe.read(4) == _PCAPNG_MAGIC else "pcap"
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
