"""Analysis of collected artifacts: pure functions from capture files and snapshot text to
frozen dataclasses, each with ``to_dict()`` for summary.json."""

from lab.evidence.analysis.common import Endpoint
from lab.evidence.analysis.paths import PathMatch, match_connections
from lab.evidence.analysis.pcap import (
    CaptureError,
    Packet,
    flows_between,
    pcap_ok,
    read_packets,
    unique_packets,
)
from lab.evidence.analysis.snapshots import (
    ProcessRow,
    SocketRow,
    children,
    descendants,
    parse_netstat,
    parse_ps,
    parse_sockets,
    parse_ss,
    socket_states,
    states_over_time,
    zombies,
)
from lab.evidence.analysis.summary import CaptureAnalysis, analyze_capture
from lab.evidence.analysis.tcp import TcpConnection, tcp_connections
from lab.evidence.analysis.udp import UdpFlow, udp_flows

__all__ = [
    "CaptureAnalysis",
    "CaptureError",
    "Endpoint",
    "Packet",
    "PathMatch",
    "ProcessRow",
    "SocketRow",
    "TcpConnection",
    "UdpFlow",
    "analyze_capture",
    "children",
    "descendants",
    "flows_between",
    "match_connections",
    "parse_netstat",
    "parse_ps",
    "parse_sockets",
    "parse_ss",
    "pcap_ok",
    "read_packets",
    "socket_states",
    "states_over_time",
    "tcp_connections",
    "udp_flows",
    "unique_packets",
    "zombies",
]
