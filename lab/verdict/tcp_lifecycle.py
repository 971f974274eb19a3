"""Claims on a TCP connection's life: the handshake, the close (four-way, CLOSE_WAIT,
TIME_WAIT) and the half-close."""

from __future__ import annotations

from dataclasses import dataclass

from lab.evidence.analysis.tcp import CLIENT, SERVER, Handshake, TcpConnection
from lab.evidence.folder import Evidence
from lab.evidence.phrases import phrase, steps
from lab.i18n import Msg, msg
from lab.spec.model import Scenario, Topology
from lab.verdict.check import Check, first_failure
from lab.verdict.scope import Scope, none_seen, sockets, tcp

# -- the handshake ---------------------------------------------------------------------------


def _options(mss: int | None, wscale: int | None, sack: bool, ts: bool) -> str:
    parts = [f"mss {mss}"] if mss is not None else []
    parts += [f"wscale {wscale}"] if wscale is not None else []
    parts += ["sackOK"] if sack else []
    parts += ["TS"] if ts else []
    return "<" + " ".join(parts) + ">"


def _handshake_problem(c: TcpConnection) -> Msg | str | None:
    hs = c.handshake
    if not hs.ok:
        return phrase(hs.reason)
    if hs.client_mss is None or hs.server_mss is None:
        return msg("detail.handshake.no_mss")
    return None


def _handshake_example(hs: Handshake) -> str:
    """One good handshake, its numbers and options shown."""
    assert hs.client_isn is not None and hs.server_isn is not None
    c_opts = _options(
        hs.client_mss, hs.client_wscale, hs.client_sack_permitted, hs.client_timestamps
    )
    s_opts = _options(
        hs.server_mss, hs.server_wscale, hs.server_sack_permitted, hs.server_timestamps
    )
    return (
        f"SYN seq={hs.client_isn} {c_opts}, "
        f"SYN-ACK seq={hs.server_isn} ack={hs.syn_ack_acknowledges}={hs.client_isn}+1 "
        f"{s_opts} ✓, ACK ack={hs.ack_acknowledges}={hs.server_isn}+1 ✓"
    )


def handshake(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """SYN, SYN-ACK, ACK; each acknowledges the peer's ISN + 1; both SYNs carry an MSS."""
    scope, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen("handshake", scope)
    check = first_failure("handshake", conns, _handshake_problem, msg("detail.handshake.steps"))
    if not check.passed:
        return check
    example = _handshake_example(conns[0].handshake)
    said = msg("detail.handshake.ok", all=check.message, example=example)
    return Check.said("handshake", True, said)


# -- the close -------------------------------------------------------------------------------


def four_way_close(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Each side sends a FIN and each FIN is acknowledged. Linux folds the passive side's
    ACK into its FIN when the program closes at once after reading EOF (FIN, FIN+ACK,
    ACK): still the four steps of the close, in three segments ("three-way"); both forms
    pass. When the service waits after EOF before closing (``close_delay``), the ACK
    leaves alone and only four segments (FIN, ACK, FIN, ACK: "four-way") pass."""
    scope, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen("four-way close", scope)
    delay = scope.service.option("close_delay") or 0
    kinds = ("four-way",) if delay else ("four-way", "three-way")

    def why(c: TcpConnection) -> Msg | None:
        if c.close.kind not in kinds or not c.close.complete:
            said: object = steps((s.description for s in c.close.steps), "sep.semicolon")
            if not c.close.steps:
                said = msg("detail.close.no_fin")
            if c.close.kind == "three-way" and delay:
                said = msg("detail.close.three_despite_delay", steps=said, delay=delay)
            return msg("detail.close.was", kind=msg(f"close.kind.{c.close.kind}"), steps=said)
        return None

    ok = msg("detail.close.ok_delay", delay=delay) if delay else msg("detail.close.ok")
    check = first_failure("four-way close", conns, why, ok)
    if not check.passed:
        return check
    # The forms seen, by id: "four-way", "three-way" or both (no other passes).
    forms = msg("close.forms." + "+".join(sorted({c.close.kind for c in conns})))
    example = steps((s.description for s in conns[0].close.steps), "sep.arrow")
    seen = msg("detail.close.seen", all=check.message, forms=forms, steps=example)
    return Check.said("four-way close", True, seen)


def _close_wait_problem(c: TcpConnection) -> Msg | None:
    cl = c.close
    if cl.first_fin_by != CLIENT or cl.client_fin_index is None:
        side = msg(f"side.{cl.first_fin_by or 'nobody'}")
        return msg("detail.close_wait.first_fin", side=side, kind=cl.kind)
    if cl.server_fin_index is None:
        return msg("detail.close_wait.no_fin")
    if cl.first_fin_ack_index is None or cl.first_fin_ack_index > cl.server_fin_index:
        return msg("detail.close_wait.fin_first")
    return None


def close_wait_on_server(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The server is the passive closer: it acknowledges the client's FIN no later than it
    sends its own FIN, so it passed through CLOSE_WAIT (FIN received, not yet closed)."""
    scope, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen("server passes CLOSE_WAIT", scope)
    check = first_failure(
        "server passes CLOSE_WAIT",
        conns,
        _close_wait_problem,
        msg("detail.close_wait.steps"),
    )
    if not check.passed:
        return check
    stuck = _still_close_wait(ev, scope, conns)
    if stuck:
        said = msg("detail.close_wait.stuck", n=len(stuck), total=len(conns), peer=stuck[0].client)
        return Check.said(check.name, False, said)
    cl = conns[0].close
    said = msg(
        "detail.close_wait.ok",
        all=check.message,
        fin=cl.client_fin_index,
        ack=cl.first_fin_ack_index,
        server_fin=cl.server_fin_index,
    )
    return Check.said(check.name, True, said)


def _still_close_wait(
    ev: Evidence, scope: Scope, conns: list[TcpConnection]
) -> list[TcpConnection]:
    """The connections the server's "after" snapshot still shows in CLOSE_WAIT: their
    clients had long gone, and the server's FIN came only when it was stopped (a
    descriptor never closed, such as a fork server parent's copy)."""
    rows = sockets(ev, scope.service.node, "after") or []
    waiting = {r.remote for r in rows if r.state == "CLOSE_WAIT"}
    return [c for c in conns if c.client in waiting]


# -- TIME_WAIT -------------------------------------------------------------------------------


def closed_first_by(name: str, conns: list[TcpConnection], side: str) -> Check:
    """Every connection's first FIN came from ``side``, which alone ends in TIME_WAIT."""
    return first_failure(
        name,
        conns,
        lambda c: (
            None
            if c.close.time_wait_by == (side,)
            else msg(
                "detail.time_wait.goes_to",
                kind=msg(f"close.kind.{c.close.kind}"),
                who=_sides(c.close.time_wait_by),
            )
        ),
        msg("detail.fin_first", side=msg(f"side.{side}")),
    )


def _sides(sides: tuple[str, ...]) -> object:
    """The sides that end in TIME_WAIT, said as the analysis's tuple: ``('client',)``."""
    named = [msg(f"side.{s}") if s in (CLIENT, SERVER) else s for s in sides]
    if len(named) == 1:
        return msg("detail.sides1", a=named[0])
    if len(named) == 2:
        return msg("detail.sides2", a=named[0], b=named[1])
    return str(sides) if sides else msg("side.nobody")


@dataclass(frozen=True)
class ClosedFirst:
    """A scenario's TCP connections, each closed first by the same side (``wire`` says so)."""

    scope: Scope
    conns: list[TcpConnection]
    wire: Check


def closed_first(
    name: str, topo: Topology, ev: Evidence, sc: Scenario, side: str
) -> ClosedFirst | Check:
    """The scenario's connections when there are some and ``side`` closed each first;
    otherwise the failing check ``name`` that says which of the two is not so."""
    scope, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen(name, scope)
    wire = closed_first_by(name, conns, side)
    return ClosedFirst(scope, conns, wire) if wire.passed else wire


def _client_time_wait(ev: Evidence, sc: Scenario, scope: Scope) -> tuple[set[int], Msg | None]:
    """The client ports in TIME_WAIT towards the service after the run, or the missing
    snapshot that keeps them from being known."""
    in_tw: set[int] = set()
    for node in sc.clients:
        rows = sockets(ev, node, "after")
        if rows is None:
            return set(), msg("detail.no_after_of", node=node)
        in_tw |= {
            r.local.port
            for r in rows
            if r.state == "TIME_WAIT" and r.remote.port == scope.service.port
        }
    return in_tw, None


def time_wait_on_client(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The client closes first (pcap) and its sockets are in TIME_WAIT in the "after"
    snapshot of the client nodes, while the server holds none of them in TIME_WAIT."""
    name = "TIME_WAIT on the client"
    first = closed_first(name, topo, ev, sc, CLIENT)
    if isinstance(first, Check):
        return first
    scope, wire = first.scope, first.wire
    in_tw, problem = _client_time_wait(ev, sc, scope)
    if problem is not None:
        return Check.said(name, False, problem)
    server_rows = sockets(ev, scope.service.node, "after") or []
    server_tw = [r for r in server_rows if r.state == "TIME_WAIT" and r.remote.port in scope.ports]
    missing = sorted(scope.ports - in_tw)
    said = msg(
        "detail.time_wait",
        wire=wire.message,
        tw=len(scope.ports & in_tw),
        total=len(scope.ports),
        server=len(server_tw),
    )
    if missing:
        said = msg("detail.time_wait.missing", said=said, ports=missing[:5])
    return Check.said(name, not missing and not server_tw and bool(scope.ports), said)


# -- the half-close --------------------------------------------------------------------------


def _after_client_fin(c: TcpConnection) -> tuple[int, int]:
    """(data bytes, segments) the server sent after the client's FIN."""
    fin = c.close.client_fin_index or 0
    later = [s for s in c.segments if s.index > fin and s.sender == SERVER]
    return sum(s.payload_len for s in later), len(later)


def _half_close_problem(c: TcpConnection) -> Msg | None:
    cl = c.close
    if cl.first_fin_by != CLIENT:
        return msg("detail.half_close.not_first", kind=cl.kind)
    if any(s.has("RST") for s in c.segments):
        return msg("detail.half_close.rst")
    if cl.server_fin_index is None or cl.last_ack_index is None:
        return msg("detail.half_close.no_ack")
    return None


def half_close(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The client's FIN closes only its sending half: after it, the server still sends
    (its FIN, and any data) and the client still receives and acknowledges, with no RST."""
    name = "half-close"
    scope, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen(name, scope)
    check = first_failure(
        name,
        conns,
        _half_close_problem,
        msg("detail.half_close.steps"),
    )
    data = sum(_after_client_fin(c)[0] for c in conns)
    segs = sum(_after_client_fin(c)[1] for c in conns)
    said = msg("detail.half_close.ok", all=check.message, segs=segs, data=data)
    return Check.said(name, check.passed, said)
