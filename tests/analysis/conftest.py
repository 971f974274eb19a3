"""Crafting small captures with dpkt: a :class:`Wire` collects frames between a client and a
server (optionally through a router) and writes them as Ethernet, SLL or SLL2 pcaps."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dpkt
import pytest

from lab.evidence.analysis.pcap import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2

CLIENT_MAC = b"\x02\x00\x00\x00\x01\x02"
SERVER_MAC = b"\x02\x00\x00\x00\x02\x02"

FLAGS = {
    "S": dpkt.tcp.TH_SYN,
    "A": dpkt.tcp.TH_ACK,
    "F": dpkt.tcp.TH_FIN,
    "R": dpkt.tcp.TH_RST,
    "P": dpkt.tcp.TH_PUSH,
}


def syn_options(mss: int = 1460, wscale: int | None = 7) -> bytes:
    """MSS, SACK-permitted, timestamps and (optionally) window scale, padded to 4 bytes."""
    opts = struct.pack(">BBH", 2, 4, mss) + b"\x04\x02" + struct.pack(">BBII", 8, 10, 1, 0)
    if wscale is not None:
        opts += b"\x01" + struct.pack(">BBB", 3, 3, wscale)
    return opts + b"\x00" * (-len(opts) % 4)


@dataclass(frozen=True)
class Frame:
    time: float
    src_mac: bytes
    dst_mac: bytes
    ip: dpkt.ip.IP


@dataclass
class Wire:
    """A conversation between ``client`` and ``server`` as seen at one capture point."""

    client: tuple[str, int] = ("10.0.1.2", 40000)
    server: tuple[str, int] = ("10.0.2.2", 9999)
    client_mac: bytes = CLIENT_MAC
    server_mac: bytes = SERVER_MAC
    ttl: int = 64
    frames: list[Frame] = field(default_factory=list)
    clock: float = 1_700_000_000.0
    ip_id: int = 100

    def _ip(self, sender: str, proto: int, payload: dpkt.Packet, ttl: int | None) -> Frame:
        src, dst = (self.client, self.server) if sender == "c" else (self.server, self.client)
        macs = (self.client_mac, self.server_mac)
        smac, dmac = macs if sender == "c" else macs[::-1]
        self.clock += 0.001
        self.ip_id += 1
        ip = dpkt.ip.IP(
            src=socket.inet_aton(src[0]),
            dst=socket.inet_aton(dst[0]),
            p=proto,
            ttl=self.ttl if ttl is None else ttl,
            id=self.ip_id,
            df=1,
            data=payload,
        )
        ip.len = len(bytes(ip))
        frame = Frame(self.clock, smac, dmac, ip)
        self.frames.append(frame)
        return frame

    def tcp(
        self,
        sender: str,
        flags: str,
        seq: int,
        ack: int = 0,
        data: bytes = b"",
        win: int = 502,
        opts: bytes = b"",
        ttl: int | None = None,
    ) -> Frame:
        """Append a segment from "c" (client) or "s" (server); flags as letters, e.g. "SA"."""
        src, dst = (self.client, self.server) if sender == "c" else (self.server, self.client)
        bits = 0
        for letter in flags:
            bits |= FLAGS[letter]
        seg = dpkt.tcp.TCP(
            sport=src[1],
            dport=dst[1],
            seq=seq,
            ack=ack,
            flags=bits,
            win=win,
            opts=opts,
            data=data,
        )
        seg.off = (20 + len(opts)) // 4
        return self._ip(sender, dpkt.ip.IP_PROTO_TCP, seg, ttl)

    def udp(self, sender: str, data: bytes) -> Frame:
        src, dst = (self.client, self.server) if sender == "c" else (self.server, self.client)
        dgram = dpkt.udp.UDP(sport=src[1], dport=dst[1], data=data)
        dgram.ulen = 8 + len(data)
        return self._ip(sender, dpkt.ip.IP_PROTO_UDP, dgram, None)

    def write(self, path: Path, linktype: int = LINKTYPE_ETHERNET) -> Path:
        with path.open("wb") as f:
            writer = dpkt.pcap.Writer(f, linktype=linktype, snaplen=262144)
            for fr in self.frames:
                writer.writepkt(link_frame(fr, linktype), ts=fr.time)
        return path


def link_frame(fr: Frame, linktype: int, outgoing: bool = False, ifindex: int = 2) -> bytes:
    ip = bytes(fr.ip)
    pkttype = 4 if outgoing else 0
    if linktype == LINKTYPE_ETHERNET:
        return bytes(dpkt.ethernet.Ethernet(src=fr.src_mac, dst=fr.dst_mac, type=0x0800)) + ip
    if linktype == LINKTYPE_LINUX_SLL:
        return struct.pack(">HHH8sH", pkttype, 1, 6, fr.src_mac + b"\x00\x00", 0x0800) + ip
    if linktype == LINKTYPE_LINUX_SLL2:
        hdr = struct.pack(">HHiHBB8s", 0x0800, 0, ifindex, 1, pkttype, 6, fr.src_mac + b"\x00\x00")
        return hdr + ip
    raise ValueError(linktype)


WireFactory = Callable[..., Wire]
Handshake = Callable[..., None]  # the tcp_handshake fixture: handshake's signature
LinkFramer = Callable[..., bytes]  # the make_link_frame fixture: link_frame's signature


@pytest.fixture
def wire() -> WireFactory:
    """A factory of fresh :class:`Wire` conversations (keyword arguments as Wire's)."""
    return Wire


def handshake(w: Wire, c_isn: int = 1000, s_isn: int = 5000, wscale: int | None = 7) -> None:
    """SYN, SYN-ACK, ACK with MSS 1460 and window scale (when given) on both sides."""
    w.tcp("c", "S", c_isn, 0, win=64240, opts=syn_options(1460, wscale))
    w.tcp("s", "SA", s_isn, c_isn + 1, win=65160, opts=syn_options(1400, wscale))
    w.tcp("c", "A", c_isn + 1, s_isn + 1)


@pytest.fixture
def tcp_handshake() -> Handshake:
    return handshake


@pytest.fixture
def make_link_frame() -> LinkFramer:
    return link_frame
