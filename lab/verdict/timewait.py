"""The claim that TIME_WAIT lasts 2MSL: the active closer's socket sits in TIME_WAIT from
the close on and is gone about 60 s later (Linux's TCP_TIMEWAIT_LEN; 2MSL with its MSL of
30 s), long enough for a late duplicate to die and for the last ACK to be sent again if the
peer's FIN comes again.

It reads the close from the server's capture (the client's FIN first, the time of the last
ACK), and the client's sockets from its ``after`` snapshot and the scenario's ``watch``
snapshots, each with the time run.json gives it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.evidence.analysis.tcp import CLIENT, TcpConnection
from lab.evidence.folder import Evidence
from lab.i18n import Msg, join, known, msg
from lab.spec.model import Scenario, Topology
from lab.verdict.check import Check
from lab.verdict.scope import Scope, sockets
from lab.verdict.tcp_lifecycle import closed_first

# Linux's TIME_WAIT (TCP_TIMEWAIT_LEN): "about 2MSL" accepts this much either way.
TWO_MSL = 60.0
SLACK = 10.0


@dataclass(frozen=True)
class _Seen:
    """When the connection's client socket was seen in TIME_WAIT, seconds after the close."""

    after: bool  # in the 'after' snapshot
    last: float | None  # the last watch snapshot that shows it
    gone: float | None  # the first watch snapshot after that one without it
    watched: float  # the last watch snapshot taken


def close_time(c: TcpConnection) -> float | None:
    """The time of the close's last ACK (else the last FIN): TIME_WAIT's start."""
    index = c.close.last_ack_index or c.close.server_fin_index
    return next((s.time for s in c.segments if s.index == index), None)


def _in_time_wait(ev: Evidence, node: str, phase: str, c: TcpConnection) -> bool:
    rows = sockets(ev, node, phase) or []
    return any(
        r.state == "TIME_WAIT" and r.local.port == c.client.port and r.remote == c.server
        for r in rows
    )


def _seen(ev: Evidence, node: str, c: TcpConnection, closed: float) -> _Seen:
    last = gone = None
    watched = 0.0
    for w in ev.record.watch or []:
        at = w.time - closed
        watched = at
        if _in_time_wait(ev, node, w.phase, c):
            last, gone = at, None
        elif last is not None and gone is None:
            gone = at
    return _Seen(_in_time_wait(ev, node, "after", c), last, gone, watched)


def time_wait_series(ev: Evidence, sc: Scenario, c: TcpConnection) -> list[tuple[float, bool]]:
    """Each watch snapshot as (seconds after the close, the client socket in TIME_WAIT);
    empty without a close time."""
    closed = close_time(c)
    if closed is None:
        return []
    node = sc.clients[0]
    return [(w.time - closed, _in_time_wait(ev, node, w.phase, c)) for w in ev.record.watch or []]


def _problem(seen: _Seen) -> Msg | str | None:
    if not seen.after:
        return "not in TIME_WAIT in the client's 'after' snapshot"
    if seen.last is None:
        return "in no watch snapshot (is `watch` set?)"
    if seen.gone is None:
        return msg("detail.2msl.still", t=seen.watched)
    if seen.last < TWO_MSL - SLACK or seen.gone > TWO_MSL + SLACK:
        return msg("detail.2msl.lasted", span=_span(seen), msl=TWO_MSL)
    return None


def _span(seen: _Seen) -> Msg:
    assert seen.last is not None and seen.gone is not None
    mid = (seen.last + seen.gone) / 2
    return msg("detail.2msl.span", mid=mid, last=seen.last, gone=seen.gone)


def _judge(ev: Evidence, sc: Scenario, found: Scope, c: TcpConnection) -> Msg | str | _Seen | None:
    closed = close_time(c)
    if closed is None:
        return "no last ACK or FIN of the close in the capture"
    seen = _seen(ev, sc.clients[0], c, closed)
    return _problem(seen) or seen


def time_wait_2msl(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The client, closing first, holds each connection in TIME_WAIT from the close on,
    and about 60 s (2MSL) later it is gone; the server holds none."""
    name = "TIME_WAIT lasts 2MSL"
    first = closed_first(name, topo, ev, sc, CLIENT)
    if isinstance(first, Check):
        return first
    found, conns, wire = first.scope, first.conns, first.wire
    spans = []
    for c in conns:
        got = _judge(ev, sc, found, c)
        if not isinstance(got, _Seen):
            where = f"{c.client} -> {c.server}"
            why = known(got) if isinstance(got, str) else got or msg("said.no evidence")
            return Check.said(name, False, msg("detail.node_said", node=where, said=why))
        spans.append(_span(got))
    server = sockets(ev, found.service.node, "after") or []
    held = [r for r in server if r.state == "TIME_WAIT" and r.local.port == found.service.port]
    said = msg("detail.2msl.ok", wire=wire.evidence(), spans=join(spans))
    if held:
        return Check.said(name, False, msg("detail.2msl.server", said=said, n=len(held)))
    return Check.said(name, True, said)
