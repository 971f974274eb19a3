"""The records a capture is read into: :class:`Packet` and its :class:`TcpOptions`."""

from __future__ import annotations

from dataclasses import dataclass

import dpkt

from lab.evidence.analysis.common import Endpoint, ToDict
from lab.evidence.analysis.files import EvidenceFileError

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

_FLAG_BITS = {name: bit for bit, name in TCP_FLAG_NAMES}


class CaptureError(EvidenceFileError, ValueError):
    """A file is not a capture the analysis can read (bad magic, unsupported link type)."""


@dataclass(frozen=True)
class TcpOptions(ToDict):
    """The TCP options the analysis reports. ``timestamp`` is (TSval, TSecr); ``sack``
    the SACK blocks, each (left edge, right edge) as raw sequence numbers."""

    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    timestamp: tuple[int, int] | None = None
    sack: tuple[tuple[int, int], ...] = ()


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
        # One bit test, not the tuple of names: called for every flag of every segment.
        return self.tcp_flags is not None and bool(self.tcp_flags & _FLAG_BITS.get(flag, 0))
