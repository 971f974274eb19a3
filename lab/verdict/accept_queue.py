"""Claims on the accept queue of an iterative server: connections complete their
handshake while another is served and wait their turn; with the queue full, a new SYN is
dropped and the client sends it again."""

from __future__ import annotations

import re
from itertools import pairwise

from lab.evidence.analysis.tcp import CLIENT, SERVER, Segment, TcpConnection, tcp_connections
from lab.evidence.folder import Evidence
from lab.i18n import Msg, join, msg
from lab.spec.model import Scenario, Service, Topology
from lab.verdict.check import Check, first_failure
from lab.verdict.scope import Scope, none_seen, tcp


def _others(ev: Evidence, scope: Scope, mine: list[TcpConnection]) -> list[TcpConnection]:
    """Connections to the same service that are not the scenario's own (its neighbours)."""
    own = {c.four_tuple for c in mine}
    out: dict[tuple[str, int, str, int], TcpConnection] = {}
    for path in ev.captures(scope.service.node):
        for c in tcp_connections(ev.packets(path)):
            ip, port = c.server.ip, c.server.port
            if port == scope.service.port and ip in scope.server_ips and c.four_tuple not in own:
                out.setdefault(c.four_tuple, c)
    return list(out.values())


_LOGGED_BACKLOG = re.compile(r"^listening tcp \S+ pid=\d+ backlog=(\d+)$", re.MULTILINE)
DEFAULT_BACKLOG = 128


def listen_backlog(ev: Evidence, service: Service) -> int:
    """The service's ``listen()`` backlog: its ``backlog`` option, else what it logged in
    its ``listening`` line (the lab's servers and the course's C ones log it, so a user's
    ``run: [..., --backlog, "1"]`` counts), else the default."""
    given = service.option("backlog")
    if given is not None:
        return int(given)
    record = ev.record.services.get(service.name)
    text = ev.text(ev.root / record.log) if record is not None else None
    found = _LOGGED_BACKLOG.search(text or "")
    return int(found.group(1)) if found else DEFAULT_BACKLOG


def _first_reply(c: TcpConnection) -> float | None:
    return next((s.time for s in c.data_segments if s.sender == SERVER), None)


def _fin_time(c: TcpConnection, index: int | None) -> float | None:
    return next((s.time for s in c.segments if s.index == index), None) if index else None


def _served_until(c: TcpConnection) -> float:
    """When the server was done with ``c``: its FIN, or else the connection's last packet."""
    return _fin_time(c, c.close.server_fin_index) or c.end_time


# -- served in turn --------------------------------------------------------------------------


def _in_turn(c: TcpConnection, others: list[TcpConnection]) -> tuple[Msg | str | None, Msg | None]:
    """(problem, note): whether ``c`` connected while another was served and got its first
    reply only after that other one ended; the note says by how much."""
    done, reply = c.handshake.ack_time, _first_reply(c)
    if done is None or reply is None:
        return "no complete handshake or no reply", None
    busy = [
        o
        for o in others
        if o.handshake.ack_time is not None
        and o.handshake.ack_time < done
        and _served_until(o) > done
    ]
    if not busy:
        return "no other connection was being served when its handshake completed", None
    o = max(busy, key=_served_until)
    fin = _fin_time(o, o.close.server_fin_index)
    if fin is None or reply < fin:
        return msg("detail.turn.early", t=reply - done, other=o.client), None
    return None, msg(
        "detail.turn.note", client=c.client, wait=fin - done, other=o.client, after=reply - fin
    )


def served_in_turn(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """One client at a time: each connection's handshake completes while another is still
    being served (the kernel queues it), but its first reply comes only after that other
    connection has ended (the server's FIN to it)."""
    name = "served in turn"
    scope, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen(name, scope)
    others = _others(ev, scope, conns)
    notes: list[Msg] = []

    def why(c: TcpConnection) -> Msg | str | None:
        problem, note = _in_turn(c, others)
        notes.extend([note] if note else [])
        return problem

    check = first_failure(name, conns, why, "connected while another was served, then served")
    if not (check.passed and notes):
        return check
    return Check.said(name, True, msg("detail.then_eg", said=check.evidence(), x=notes[0]))


# -- SYN retransmitted -----------------------------------------------------------------------


def _queued_at(others: list[TcpConnection], t: float) -> tuple[int, int]:
    """(waiting, served) connections at time ``t``: handshake done, no FIN from the server
    yet, and no reply yet (waiting in the accept queue) or some (being served)."""
    waiting = served = 0
    for o in others:
        done, fin = o.handshake.ack_time, _fin_time(o, o.close.server_fin_index)
        if done is None or done > t or (fin is not None and fin <= t):
            continue
        reply = _first_reply(o)
        if reply is not None and reply <= t:
            served += 1
        else:
            waiting += 1
    return waiting, served


def _client_syns(c: TcpConnection) -> list[Segment]:
    return [s for s in c.segments if s.sender == CLIENT and s.has("SYN") and not s.has("ACK")]


def _syn_example(c: TcpConnection, others: list[TcpConnection], backlog: int) -> Msg:
    """When one connection sent its SYN, how the queue stood at the first, when answered."""
    syns = _client_syns(c)
    waiting, served = _queued_at(others, syns[0].time)
    times = join((msg("detail.plus_s1", t=s.time - syns[0].time) for s in syns), "sep.comma")
    answered = c.handshake.syn_ack_time
    return msg(
        "detail.syn.example",
        client=c.client,
        isn=c.handshake.client_isn,
        n=len(syns),
        times=times,
        t=(answered or syns[0].time) - syns[0].time,
        waiting=waiting,
        backlog=backlog,
        served=served,
    )


def syn_retransmitted(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """With the accept queue full (at least ``backlog`` connections done with their
    handshake and not yet accepted), the server drops a new SYN; the client sends it again,
    same ISN, after its retransmission timeout (1 s, then 2 s more ...)."""
    name = "SYN retransmitted"
    scope, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen(name, scope)
    backlog = listen_backlog(ev, scope.service)
    others = _others(ev, scope, conns)
    again = [c for c in conns if c.handshake.syn_retransmissions > 0]
    if not again:
        return Check.said(name, False, msg("detail.syn.none_again", total=len(conns)))
    problems: list[Msg] = []
    for c in again:
        waiting, _ = _queued_at(others, _client_syns(c)[0].time)
        if waiting < backlog:
            problems.append(msg("detail.syn.waiting", client=c.client, waiting=waiting))
    said = msg(
        "detail.syn.again",
        n=len(again),
        total=len(conns),
        example=_syn_example(again[0], others, backlog),
    )
    if problems:
        said = msg("detail.syn.not_full", said=said, problems=join(problems[:3]))
    return Check.said(name, not problems, said)


# -- one client at a time (an iterative server's built-in check) -----------------------------


def one_at_a_time(topo: Topology, ev: Evidence, service: Service) -> Check:
    """No two connections to the service were served at once: each one's first reply
    comes after the server was done (its FIN) with every connection served before it."""
    name = "one client at a time"
    server_ips = {str(i.address) for i in topo.node(service.node).interfaces}
    conns: dict[tuple[str, int, str, int], TcpConnection] = {}
    for path in ev.captures(service.node):
        for c in tcp_connections(ev.packets(path)):
            if c.server.port == service.port and c.server.ip in server_ips:
                conns.setdefault(c.four_tuple, c)
    served = sorted(
        (
            (reply, _served_until(c), c)
            for c in conns.values()
            if (reply := _first_reply(c)) is not None
        ),
        key=lambda t: (t[0], t[1]),
    )
    if not served:
        return Check.said(name, False, msg("detail.turn.none_served", service=service.name))
    for (_, end, a), (start, _, b) in pairwise(served):
        if start < end:
            said = msg("detail.turn.at_once", b=b.client, t=end - start, a=a.client)
            return Check.said(name, False, said)
    return Check.said(name, True, msg("detail.turn.in_turn", n=len(served)))
