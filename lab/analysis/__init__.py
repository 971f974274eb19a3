"""Analysis of collected artifacts: pure functions from capture files and snapshot text to
frozen dataclasses, each with ``to_dict()`` for summary.json."""

from lab.analysis.common import Endpoint
from lab.analysis.pcap import CaptureError, Packet, flows_between, pcap_ok, read_packets
from lab.analysis.tcp import TcpConnection, tcp_connections
from lab.analysis.udp import UdpFlow, udp_flows

__all__ = [
    "CaptureError",
    "Endpoint",
    "Packet",
    "TcpConnection",
    "UdpFlow",
    "flows_between",
    "pcap_ok",
    "read_packets",
    "tcp_connections",
    "udp_flows",
]
