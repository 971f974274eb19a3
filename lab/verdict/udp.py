"""Claims on UDP: no set-up exchange, one datagram per message, nothing left in TIME_WAIT."""

from __future__ import annotations

from lab.evidence.analysis.udp import UdpFlow
from lab.evidence.folder import Evidence
from lab.i18n import msg
from lab.spec.model import Scenario, Topology
from lab.verdict.check import Check
from lab.verdict.scope import Scope, client_sent, none_seen, scope, sockets, udp


def _tcp_segments(ev: Evidence, found: Scope) -> int:
    """TCP segments on the service's port in the server's captures."""
    return sum(
        1
        for path in ev.captures(found.service.node)
        for p in ev.packets(path)
        if p.protocol == "tcp" and found.service.port in (p.src_port, p.dst_port)
    )


def no_handshake(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The first packet of every flow is the client's first datagram: no set-up exchange,
    and no TCP at all between the scenario's hosts on the service's port."""
    name = "no handshake"
    found, flows = udp(topo, ev, sc)
    if not flows:
        return none_seen(name, found, "UDP datagrams")
    tcp = _tcp_segments(ev, found)
    first = sc.send[0].encode()

    def opens_right(f: UdpFlow) -> bool:
        return client_sent(found, f, f.datagrams[0].sender) and f.datagrams[0].payload == first

    bad = [f for f in flows if not opens_right(f)]
    said = msg(
        "detail.udp.opened",
        flows=len(flows),
        first=repr(first),
        size=len(first),
        tcp=tcp,
        port=found.service.port,
    )
    if bad:
        d = bad[0].datagrams[0]
        who = "client" if client_sent(found, bad[0], d.sender) else "server"
        ends = f"{bad[0].client} <-> {bad[0].server}"
        began = msg("detail.udp.began", ends=ends, who=msg(f"side.{who}"), payload=repr(d.payload))
        said = msg("detail.and_problems", said=said, problems=began)
    return Check.said(name, not bad and not tcp, said)


def no_time_wait(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Nothing of the scenario is left in TIME_WAIT (or any TCP state) on either side."""
    found = scope(topo, ev, sc)
    left: list[str] = []
    for node in {found.service.node, *sc.clients}:
        rows = sockets(ev, node, "after")
        if rows is None:
            return Check.said("no TIME_WAIT", False, msg("detail.no_after_of", node=node))
        port = found.service.port
        left += [
            f"{node} {r.local}->{r.remote} {r.state}"
            for r in rows
            if r.state == "TIME_WAIT" and port in (r.local.port, r.remote.port)
        ]
    said = msg("detail.udp.time_wait", n=len(left), port=found.service.port)
    if left:
        said = msg("detail.listed", said=said, items=", ".join(left[:3]))
    return Check.said("no TIME_WAIT", not left, said)


def datagram_boundaries(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Each item sent is one datagram, and each reply one datagram of the same bytes."""
    name = "datagram boundaries"
    found, flows = udp(topo, ev, sc)
    if not flows:
        return none_seen(name, found, "UDP datagrams")
    sent = [s.encode() for s in sc.send]
    back = [s.encode() for s in sc.expect]
    for f in flows:
        got_c, got_s = _payloads(found, f)
        if not _exchanges(got_c, got_s, sent, back):
            said = msg(
                "detail.udp.datagrams",
                ends=f"{f.client} -> {f.server}",
                got_c=repr(got_c),
                got_s=repr(got_s),
                sent=repr(sent),
                back=repr(back),
            )
            return Check.said(name, False, said)
    sizes = [len(s) for s in sent]
    said = msg("detail.udp.echoed", flows=len(flows), sizes=sizes)
    reused = [(f, k) for f in flows if (k := _exchanges(*_payloads(found, f), sent, back)) > 1]
    if reused:
        f, k = reused[0]
        again = msg("detail.udp.reused", client=f.client, k=k)
        said = msg("detail.and_problems", said=said, problems=again)
    return Check.said(name, True, said)


def _exchanges(got_c: list[bytes], got_s: list[bytes], sent: list[bytes], back: list[bytes]) -> int:
    """How many whole exchanges a flow holds, or 0 if it is not made of whole exchanges.

    A client that has closed its socket frees its port, and a later client of the same
    scenario may be given it: one address pair then carries that many exchanges in turn.
    """
    k = len(got_c) // len(sent) if sent else 0
    if k and got_c == sent * k and got_s == back * k:
        return k
    return 0


def _payloads(found: Scope, f: UdpFlow) -> tuple[list[bytes], list[bytes]]:
    """The flow's datagrams in order: the client's, and the server's."""
    got_c = [d.payload for d in f.datagrams if client_sent(found, f, d.sender)]
    got_s = [d.payload for d in f.datagrams if not client_sent(found, f, d.sender)]
    return got_c, got_s
