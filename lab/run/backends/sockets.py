"""A node's sockets as the kernel lists them in ``/proc/net/{tcp,tcp6,udp,udp6}``: what a
backend that can read them directly offers instead of running ``ss`` on the node."""

from __future__ import annotations

from dataclasses import dataclass

ESTABLISHED = 0x01
UNCONNECTED = 0x07  # a UDP socket bound and not connected: what `ss -lu` lists
LISTEN = 0x0A


@dataclass(frozen=True)
class SocketRow:
    """One socket: its local port, the kernel's state number, and its receive queue
    (for a listening socket: the connections waiting to be accepted)."""

    port: int
    state: int
    queue: int


def parse_proc_net(text: str) -> list[SocketRow]:
    """The rows of a ``/proc/net/tcp``-style table (header first; addresses and queues
    in hex: ``sl local rem st tx_queue:rx_queue ...``)."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5:
            continue
        try:
            port = int(fields[1].rsplit(":", 1)[1], 16)
            queue = int(fields[4].split(":")[1], 16)
            rows.append(SocketRow(port, int(fields[3], 16), queue))
        except (IndexError, ValueError):
            continue
    return rows


def listening(rows: list[SocketRow], protocol: str, port: int) -> bool:
    """Whether a socket listens on ``port``, as ``ss -Hln{t,u} sport = :PORT`` would say."""
    state = LISTEN if protocol == "tcp" else UNCONNECTED
    return any(r.port == port and r.state == state for r in rows)


def accepted(rows: list[SocketRow], port: int, count: int) -> bool:
    """At least ``count`` connections ESTABLISHED on ``port`` and none left waiting in its
    listeners' accept queues."""
    established = sum(1 for r in rows if r.port == port and r.state == ESTABLISHED)
    waiting = any(r.port == port and r.state == LISTEN and r.queue for r in rows)
    return established >= count and not waiting
