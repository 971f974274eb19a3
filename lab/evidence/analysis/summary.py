"""One call per capture file: validation, TCP connections and UDP flows together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.evidence.analysis.common import ToDict
from lab.evidence.analysis.files import EvidenceFileError
from lab.evidence.analysis.pcap import link_type, pcap_ok, read_packets
from lab.evidence.analysis.tcp import TcpConnection, tcp_connections
from lab.evidence.analysis.udp import UdpFlow, udp_flows


@dataclass(frozen=True)
class CaptureAnalysis(ToDict):
    """``ok``/``description`` are :func:`pcap_ok`'s verdict; an unreadable file gives
    ``ok=False``, ``link_type=None`` and no connections rather than an exception."""

    path: str
    ok: bool
    description: str
    link_type: int | None
    ip_packets: int
    tcp: tuple[TcpConnection, ...]
    udp: tuple[UdpFlow, ...]


def analyze_capture(path: str | Path) -> CaptureAnalysis:
    ok, description = pcap_ok(path)
    if not ok:
        return CaptureAnalysis(str(path), False, description, None, 0, (), ())
    try:
        packets = read_packets(path)
        lt = link_type(path)
    except (EvidenceFileError, OSError) as exc:
        return CaptureAnalysis(str(path), False, str(exc), None, 0, (), ())
    return CaptureAnalysis(
        path=str(path),
        ok=True,
        description=description,
        link_type=lt,
        ip_packets=len(packets),
        tcp=tuple(tcp_connections(packets)),
        udp=tuple(udp_flows(packets)),
    )
