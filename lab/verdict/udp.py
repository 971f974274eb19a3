"""Claims on UDP: no set-up exchange, one datagram per message, nothing left in TIME_WAIT."""

from __future__ import annotations

from lab.evidence.analysis.udp import UdpFlow
from lab.evidence.folder import Evidence
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
    detail = (
        f"{len(flows)} flows, each opened by the client's datagram {first!r} "
        f"({len(first)} bytes); {tcp} TCP segments on port {found.service.port}"
    )
    if bad:
        d = bad[0].datagrams[0]
        who = "client" if client_sent(found, bad[0], d.sender) else "server"
        detail += f"; {bad[0].client} <-> {bad[0].server} began with the {who}'s {d.payload!r}"
    return Check(name, not bad and not tcp, detail)


def no_time_wait(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Nothing of the scenario is left in TIME_WAIT (or any TCP state) on either side."""
    found = scope(topo, ev, sc)
    left: list[str] = []
    for node in {found.service.node, *sc.clients}:
        rows = sockets(ev, node, "after")
        if rows is None:
            return Check("no TIME_WAIT", False, f"no 'after' socket snapshot of {node}")
        port = found.service.port
        left += [
            f"{node} {r.local}->{r.remote} {r.state}"
            for r in rows
            if r.state == "TIME_WAIT" and port in (r.local.port, r.remote.port)
        ]
    detail = f"{len(left)} TIME_WAIT sockets on port {found.service.port} after the clients left"
    if left:
        detail += ": " + ", ".join(left[:3])
    return Check("no TIME_WAIT", not left, detail)


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
            return Check(
                name,
                False,
                f"{f.client} -> {f.server}: client datagrams {got_c!r}, server {got_s!r}; "
                f"expected {sent!r} and {back!r}",
            )
    sizes = [len(s) for s in sent]
    detail = f"{len(flows)} flows: client datagrams of {sizes} bytes, echoed one for one"
    reused = [(f, k) for f in flows if (k := _exchanges(*_payloads(found, f), sent, back)) > 1]
    if reused:
        f, k = reused[0]
        detail += f"; {f.client} was given to {k} clients in turn ({k} exchanges)"
    return Check(name, True, detail)


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
