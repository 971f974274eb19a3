"""Claims on TCP flow control: a receiver that stops reading closes its window, the
sender probes it, and a window update lets the stalled data flow again."""

from __future__ import annotations

from lab.evidence.analysis.tcp import CLIENT, SERVER, TcpConnection
from lab.evidence.folder import Evidence
from lab.i18n import Msg, join, msg
from lab.spec.model import Scenario, Topology
from lab.verdict.check import Check, first_failure
from lab.verdict.scope import line_connections, none_seen, scenario_clients, tcp


def _at(c: TcpConnection, index: int, time: float) -> Msg:
    return msg("detail.at", index=index, t=time - c.start_time)


def _zero_window_problem(c: TcpConnection) -> Msg | None:
    zeros = [e for e in c.zero_windows if e.sender == CLIENT]
    if not zeros:
        wins = [s.window_bytes for s in c.segments if s.sender == CLIENT and s.window_bytes]
        return msg("detail.window.never_zero", n=min(wins, default=0))
    if not [p for p in c.zero_window_probes if p.sender == SERVER]:
        return msg("detail.window.never_probed", n=len(zeros))
    return None


def _zero_window_example(c: TcpConnection) -> Msg:
    """When the client's window first fell to 0, how often, and when the server probed."""
    zero = next(e for e in c.zero_windows if e.sender == CLIENT)
    probes = [p for p in c.zero_window_probes if p.sender == SERVER]
    shown = join((msg("detail.plus_s", t=p.time - c.start_time) for p in probes[:6]), "sep.comma")
    return msg(
        "detail.window.example",
        at=_at(c, zero.index, zero.time),
        zeros=sum(e.sender == CLIENT for e in c.zero_windows),
        probes=len(probes),
        shown=shown,
    )


def zero_window(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The client, not reading, advertises window 0; the server, with replies still to
    send, probes the closed window (zero-window probes) while it stays 0."""
    name = "zero window"
    scope, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen(name, scope)
    check = first_failure(
        name, conns, _zero_window_problem, "the client's window fell to 0, the server probed"
    )
    if not check.passed:
        return check
    return Check.said(
        name, True, msg("detail.then", a=check.evidence(), b=_zero_window_example(conns[0]))
    )


def _reopening(c: TcpConnection) -> tuple[Msg | str, int, float] | None:
    """The client's window update (no data, same ack, a new window) after its last zero
    window, as (what, index, time); None if the window never closed or never reopened so."""
    zeros = [e.index for e in c.zero_windows if e.sender == CLIENT]
    if not zeros:
        return None
    for u in c.window_updates:
        if u.sender == CLIENT and u.index > zeros[-1]:
            return msg("detail.window.update", n=u.window_bytes), u.index, u.time
    return None


def window_reopens(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """After its last zero window the client announces an open window (a window update),
    the server's stalled data flows again, and every reply arrives, complete and right:
    on the wire (the server's byte count) and in the client's report."""
    name = "window reopens"
    scope, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen(name, scope)
    want = sum(len(line.encode()) + 1 for line in sc.expected_replies)

    def why(c: TcpConnection) -> Msg | str | None:
        reopened = _reopening(c)
        if reopened is None:
            return "no window update from the client after a zero window"
        after = [s for s in c.data_segments if s.sender == SERVER and s.index > reopened[1]]
        if not after:
            return msg("detail.window.no_data_after", what=reopened[0])
        if c.server_bytes != want:
            return msg("detail.window.bytes", sent=c.server_bytes, want=want)
        return None

    check = first_failure(name, conns, why, msg("detail.window.reopened", want=want))
    replies = _reply_count(ev, sc)
    total = len(sc.expected_replies) * sc.total_connections
    said = msg("detail.window.replies", said=check.evidence(), replies=replies, total=total)
    if check.passed:
        c = conns[0]
        how, index, time = _reopening(c) or ("", 0, 0.0)
        said = msg("detail.window.eg", said=said, how=how, at=_at(c, index, time))
    return Check.said(name, check.passed and replies == total, said)


def _reply_count(ev: Evidence, sc: Scenario) -> int:
    """Replies the scenario's clients got as expected, counted per connection in order."""
    clients = scenario_clients(ev, sc)
    expected = list(sc.expected_replies)
    good = 0
    for node in sc.clients:
        for conn in line_connections(clients.get(node)):
            good += sum(1 for a, b in zip(conn.replies, expected, strict=False) if a == b)
    return good
