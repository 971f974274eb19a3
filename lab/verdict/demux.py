"""Claims on demultiplexing: one listening port serves many clients, each connection (its
4-tuple) belongs to one child of a fork server, and the listening socket stays with the
parent.

The owners come from the server's ``during`` socket snapshot (``ss -tanp`` lists every
process holding a socket; ``netstat -tanp`` one), the parentage from its ``during``
process snapshot, and the segments from the server's capture.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.evidence.analysis.snapshots import ProcessRow, SocketRow
from lab.evidence.analysis.tcp import CLIENT, SERVER, TcpConnection
from lab.evidence.folder import Evidence
from lab.evidence.phrases import phrase
from lab.i18n import Msg, msg
from lab.spec.model import Scenario, Topology
from lab.verdict.check import Check
from lab.verdict.processes import service_pid
from lab.verdict.scope import Scope, scope, sockets, tcp_on

FourTuple = tuple[str, int, str, int]


@dataclass(frozen=True)
class During:
    """The server's pid and its ``during`` sockets and processes."""

    pid: int
    sockets: list[SocketRow]
    processes: list[ProcessRow]

    def owners(self, row: SocketRow) -> set[int]:
        return {pid for _, pid, _ in row.processes} or ({row.pid} if row.pid else set())

    def children(self) -> set[int]:
        return {r.pid for r in self.processes if r.ppid == self.pid and not r.zombie}


def during_snapshots(topo: Topology, ev: Evidence, sc: Scenario) -> During | Msg:
    service = topo.service(sc.service)
    pid = service_pid(ev, service)
    rows = sockets(ev, service.node, "during")
    procs = ev.processes(service.node, "during")
    if pid is None or rows is None or procs is None:
        return msg("detail.demux.no_during", node=service.node)
    return During(pid, rows, procs)


def four_tuple(row: SocketRow) -> FourTuple:
    """A server-side socket's 4-tuple, client first as the capture's connections have it."""
    return (row.remote.ip, row.remote.port, row.local.ip, row.local.port)


def established(found: Scope, during: During) -> list[SocketRow]:
    return [
        r
        for r in during.sockets
        if r.state == "ESTABLISHED" and found.owns(*four_tuple(r)) and r.proto.startswith("tcp")
    ]


def _owner_problem(row: SocketRow, during: During, kids: set[int]) -> Msg | None:
    owners = during.owners(row)
    if len(owners) != 1:
        return msg("detail.demux.owners", n=len(owners), pids=sorted(owners))
    (owner,) = owners
    if owner not in kids:
        return msg("detail.demux.not_child", owner=owner, pid=during.pid)
    return None


def _capture_problem(conns: list[TcpConnection]) -> Msg | None:
    """The 4-tuple's segments make one connection, and the server's bytes on it are its own
    client's bytes upper-cased (the echo of that connection, no other's)."""
    if len(conns) != 1:
        return msg("detail.demux.tuple_conns", n=len(conns))
    c = conns[0]
    if not c.handshake.ok:
        return msg("detail.demux.no_handshake", reason=phrase(c.handshake.reason))
    sent, back = c.stream(CLIENT), c.stream(SERVER)
    if not sent or back != sent.upper():
        return msg("detail.demux.not_echo", back=len(back), sent=len(sent))
    return None


def connection_per_child(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Each held connection's 4-tuple is held by exactly one live child of the server, a
    different child for each, and its segments in the capture are that connection's."""
    name = "a 4-tuple per child"
    during = during_snapshots(topo, ev, sc)
    if isinstance(during, Msg):
        return Check.said(name, False, during)
    found = scope(topo, ev, sc)
    rows = established(found, during)
    want = sc.total_connections
    if len(rows) != want:
        return Check.said(name, False, msg("detail.demux.established", n=len(rows), want=want))
    kids = during.children()
    captured = tcp_on(ev, found.service.node, found)
    for row in rows:
        tup = four_tuple(row)
        problem = _owner_problem(row, during, kids) or _capture_problem(
            [c for c in captured if c.four_tuple == tup]
        )
        if problem:
            where = f"{tup[0]}:{tup[1]} -> {tup[2]}:{tup[3]}"
            return Check.said(name, False, msg("detail.node_said", node=where, said=problem))
    owners = sorted(next(iter(during.owners(r))) for r in rows)
    if len(set(owners)) != len(owners):
        return Check.said(name, False, msg("detail.demux.share", owners=owners))
    pairs = ", ".join(f":{r.remote.port}->pid {next(iter(during.owners(r)))}" for r in rows)
    said = msg("detail.demux.ok", n=len(rows), kids=len(set(owners)), pid=during.pid, pairs=pairs)
    return Check.said(name, True, said)


def listener_with_parent(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """While the children serve, the listening socket is the parent's alone (each child
    closed its copy after fork)."""
    name = "listener stays with the parent"
    during = during_snapshots(topo, ev, sc)
    if isinstance(during, Msg):
        return Check.said(name, False, during)
    port = topo.service(sc.service).port
    listening = [r for r in during.sockets if r.state == "LISTEN" and r.local.port == port]
    if len(listening) != 1:
        return Check.said(name, False, msg("detail.demux.listeners", n=len(listening), port=port))
    owners = during.owners(listening[0])
    kids = during.children()
    ok = owners == {during.pid} and bool(kids)
    said = msg(
        "detail.demux.listener",
        port=port,
        owners=sorted(owners),
        pid=during.pid,
        kids=len(kids),
        hold=msg("detail.demux.none" if not owners & kids else "detail.demux.too"),
    )
    return Check.said(name, ok, said)
