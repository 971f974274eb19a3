"""What ``lab.programs.supervise`` reads of its network namespace: listening ports and
connections from /proc/net, and its interfaces.

Standard library only: this runs inside the node image.
"""

from __future__ import annotations

import fcntl
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

# /proc/net/tcp state codes (include/net/tcp_states.h).
TCP_LISTEN = "0A"
# States in which this host still has segments of a close to send or receive; once every
# socket is past them (TIME_WAIT or gone) the captures have seen the whole close.
TCP_CLOSING_STATES = frozenset({"01", "02", "03", "04", "05", "08", "09", "0B"})

SIOCGIFADDR = 0x8915


@dataclass(frozen=True)
class Listen:
    proto: str  # "tcp" or "udp"
    port: int

    def __str__(self) -> str:
        return f"{self.proto}:{self.port}"


def _proc_rows(path: Path) -> list[list[str]]:
    try:
        lines = path.read_text().splitlines()[1:]
    except FileNotFoundError:  # no IPv6 in this kernel or namespace
        return []
    return [line.split() for line in lines if line.strip()]


def open_ports(proc_net: Path = Path("/proc/net")) -> set[Listen]:
    """TCP ports in LISTEN and bound UDP ports, IPv4 and IPv6, of this network namespace."""
    found: set[Listen] = set()
    for proto in ("tcp", "udp"):
        for name in (proto, proto + "6"):
            for row in _proc_rows(proc_net / name):
                port = int(row[1].rsplit(":", 1)[1], 16)
                if proto == "udp" or row[3] == TCP_LISTEN:
                    found.add(Listen(proto, port))
    return found


def closing_connections(proc_net: Path = Path("/proc/net")) -> int:
    """TCP sockets still opening, established or part-way through a close."""
    count = 0
    for name in ("tcp", "tcp6"):
        count += sum(1 for row in _proc_rows(proc_net / name) if row[3] in TCP_CLOSING_STATES)
    return count


def interface_address(name: str) -> str | None:
    """The interface's IPv4 address (SIOCGIFADDR), or None if it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("256s", name.encode()[:15])
        try:
            reply = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)
        except OSError:
            return None
    return socket.inet_ntoa(reply[20:24])


def capture_interfaces() -> list[str]:
    """Every interface but loopback, by index (eth0, eth1, ... in a container)."""
    return [name for _, name in sorted(socket.if_nameindex()) if name != "lo"]


def interface_with(address: str) -> str | None:
    """The interface that has ``address``, or None."""
    return next((n for n in capture_interfaces() if interface_address(n) == address), None)
