"""One captured Ethernet frame taken apart header by header, every field with the bytes it
occupies, for the claims on a frame's layout and byte order and for the report's hex view.

The decoder works on the raw bytes with fixed offsets (the headers as RFC 791 and RFC 793
draw them), not through a packet library, so that each field's place in the frame is
exact. Only Ethernet captures of IPv4/TCP are taken apart: that is what the lab's nodes
capture on their interfaces.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from lab.evidence.analysis.files import EvidenceFileError
from lab.evidence.analysis.pcap_decode import LINKTYPE_ETHERNET
from lab.evidence.analysis.pcap_files import open_capture

# Each header's place in the two layer models: (OSI layer number and name, TCP/IP layer).
LAYERS: dict[str, tuple[int, str, str]] = {
    "Ethernet": (2, "data link", "link"),
    "IPv4": (3, "network", "internet"),
    "TCP": (4, "transport", "transport"),
    "payload": (7, "application", "application"),
}

_ETH = 14
_TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")


@dataclass(frozen=True)
class Field:
    """A field of a header: bytes ``start``..``end`` of the frame, and its value as read in
    network byte order."""

    layer: str  # a key of LAYERS
    name: str
    start: int
    end: int
    value: str


@dataclass(frozen=True)
class TcpFrame:
    """An Ethernet/IPv4/TCP frame: its bytes, every field and the values the claims read.
    ``tcp_checksum`` is "valid", "offload" (the sender's kernel left the field holding only
    the pseudo-header's sum, for the network card to finish; a veth never does, and
    tcpdump calls it incorrect) or "bad"."""

    capture: str
    index: int  # 1-based record number in the file
    data: bytes
    fields: tuple[Field, ...]
    src_mac: str
    dst_mac: str
    ethertype: int
    src_ip: str
    dst_ip: str
    ip_checksum_ok: bool
    src_port: int
    dst_port: int
    seq: int
    flags: tuple[str, ...]
    window: int
    tcp_checksum: str
    payload: bytes

    def field(self, layer: str, name: str) -> Field:
        return next(f for f in self.fields if f.layer == layer and f.name == name)

    def bytes_of(self, f: Field) -> bytes:
        return self.data[f.start : f.end]


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    return _fold(sum(struct.unpack(f"!{len(data) // 2}H", data)))


def _tcp_checksum(ip_header: bytes, segment: bytes) -> str:
    pseudo = ip_header[12:20] + struct.pack("!BBH", 0, 6, len(segment))
    if _sum16(pseudo + segment) == 0xFFFF:
        return "valid"
    field = struct.unpack("!H", segment[16:18])[0]
    return "offload" if field == _sum16(pseudo) else "bad"


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _ethernet(data: bytes) -> list[Field]:
    return [
        Field("Ethernet", "destination MAC", 0, 6, _mac(data[0:6])),
        Field("Ethernet", "source MAC", 6, 12, _mac(data[6:12])),
        Field("Ethernet", "EtherType", 12, 14, f"0x{struct.unpack('!H', data[12:14])[0]:04x}"),
    ]


def _ipv4(data: bytes, o: int, ihl: int) -> list[Field]:
    ver_ihl, tos, total, ident, frag, ttl, proto, csum = struct.unpack(
        "!BBHHHBBH", data[o : o + 12]
    )
    out = [
        Field("IPv4", "version, header length", o, o + 1, f"{ver_ihl >> 4}, {ihl} bytes"),
        Field("IPv4", "DSCP/ECN", o + 1, o + 2, f"0x{tos:02x}"),
        Field("IPv4", "total length", o + 2, o + 4, str(total)),
        Field("IPv4", "identification", o + 4, o + 6, str(ident)),
        Field("IPv4", "flags, fragment offset", o + 6, o + 8, f"0x{frag:04x}"),
        Field("IPv4", "TTL", o + 8, o + 9, str(ttl)),
        Field("IPv4", "protocol", o + 9, o + 10, f"{proto} (TCP)" if proto == 6 else str(proto)),
        Field("IPv4", "header checksum", o + 10, o + 12, f"0x{csum:04x}"),
        Field("IPv4", "source address", o + 12, o + 16, str(IPv4Address(data[o + 12 : o + 16]))),
        Field(
            "IPv4", "destination address", o + 16, o + 20, str(IPv4Address(data[o + 16 : o + 20]))
        ),
    ]
    if ihl > 20:
        out.append(Field("IPv4", "options", o + 20, o + ihl, f"{ihl - 20} bytes"))
    return out


def flag_names(bits: int) -> tuple[str, ...]:
    return tuple(n for i, n in enumerate(_TCP_FLAGS) if bits & (1 << i))


def _tcp(data: bytes, t: int, doff: int) -> list[Field]:
    sport, dport, seq, ack, off, bits, win, csum, urg = struct.unpack(
        "!HHIIBBHHH", data[t : t + 20]
    )
    out = [
        Field("TCP", "source port", t, t + 2, str(sport)),
        Field("TCP", "destination port", t + 2, t + 4, str(dport)),
        Field("TCP", "sequence number", t + 4, t + 8, str(seq)),
        Field("TCP", "acknowledgment number", t + 8, t + 12, str(ack)),
        Field("TCP", "data offset", t + 12, t + 13, f"{off >> 4} words = {doff} bytes"),
        Field("TCP", "flags", t + 13, t + 14, "+".join(flag_names(bits)) or "none"),
        Field("TCP", "window", t + 14, t + 16, str(win)),
        Field("TCP", "checksum", t + 16, t + 18, f"0x{csum:04x}"),
        Field("TCP", "urgent pointer", t + 18, t + 20, str(urg)),
    ]
    if doff > 20:
        out.append(Field("TCP", "options", t + 20, t + doff, f"{doff - 20} bytes"))
    return out


def take_apart(capture: str, index: int, data: bytes) -> TcpFrame | None:
    """The frame's fields; None for a frame that is not a whole Ethernet/IPv4/TCP frame."""
    if len(data) < _ETH + 20 or data[12:14] != b"\x08\x00" or data[_ETH] >> 4 != 4:
        return None
    ihl = (data[_ETH] & 0x0F) * 4
    total = struct.unpack("!H", data[_ETH + 2 : _ETH + 4])[0]
    t = _ETH + ihl
    if ihl < 20 or data[_ETH + 9] != 6 or len(data) < _ETH + total or total < ihl + 20:
        return None
    doff = (data[t + 12] >> 4) * 4
    end = _ETH + total  # Ethernet pads short frames: the payload ends where IP says
    if doff < 20 or t + doff > end:
        return None
    fields = _ethernet(data) + _ipv4(data, _ETH, ihl) + _tcp(data, t, doff)
    if end > t + doff:
        text = f"{end - t - doff} bytes {data[t + doff : min(end, t + doff + 32)]!r}"
        fields.append(Field("payload", "data", t + doff, end, text))
    sport, dport, seq = struct.unpack("!HHI", data[t : t + 8])
    ip_header = data[_ETH:t]
    return TcpFrame(
        capture=capture,
        index=index,
        data=data,
        fields=tuple(fields),
        src_mac=_mac(data[6:12]),
        dst_mac=_mac(data[0:6]),
        ethertype=struct.unpack("!H", data[12:14])[0],
        src_ip=str(IPv4Address(data[_ETH + 12 : _ETH + 16])),
        dst_ip=str(IPv4Address(data[_ETH + 16 : _ETH + 20])),
        ip_checksum_ok=_sum16(ip_header) == 0xFFFF,
        src_port=sport,
        dst_port=dport,
        seq=seq,
        flags=flag_names(data[t + 13]),
        window=struct.unpack("!H", data[t + 14 : t + 16])[0],
        tcp_checksum=_tcp_checksum(ip_header, data[t:end]),
        payload=data[t + doff : end],
    )


def tcp_frames(path: Path, name: str) -> list[TcpFrame]:
    """Every Ethernet/IPv4/TCP frame of a capture, taken apart (``name`` labels them);
    none for a capture of another link type or one that cannot be read (the checks that
    read captures through :class:`lab.evidence.folder.Evidence` report those)."""
    try:
        cap = open_capture(path)
    except EvidenceFileError:
        return []
    if cap.linktype != LINKTYPE_ETHERNET:
        return []
    frames = (take_apart(name, i, rec.data) for i, rec in enumerate(cap.records, start=1))
    return [f for f in frames if f is not None]
