"""Claims on the addresses and ports a socket is bound to: a server bound to one address
answers only there, and a client that never binds gets a port of the kernel's ephemeral
range."""

from __future__ import annotations

from dataclasses import replace

from lab.evidence.analysis.tcp import SERVER, TcpConnection
from lab.evidence.folder import Evidence
from lab.i18n import Msg, english, join, msg
from lab.run.portrange import PORT_RANGE_KIND, PORT_RANGE_PHASE
from lab.spec.model import ANY_ADDRESS, Scenario, Topology
from lab.verdict.check import Check
from lab.verdict.scope import client_ports, none_seen, scope, sockets, tcp_on

# The file the run writes on a client node of an ``ephemeral-ports`` scenario (before its
# services start): /proc/sys/net/ipv4/ip_local_port_range as read there.
PORT_RANGE_SNAPSHOT = (PORT_RANGE_PHASE, PORT_RANGE_KIND)


def answer(conn: TcpConnection) -> str:
    """How the server answered the connection's SYN: "SYN-ACK", "RST" or "nothing"."""
    for seg in conn.segments:
        if seg.sender == SERVER and seg.has("SYN") and seg.has("ACK"):
            return "SYN-ACK"
        if seg.sender == SERVER and seg.has("RST"):
            return "RST"
    return "nothing"


def listener(ev: Evidence, node: str, port: int) -> tuple[str | None, Msg]:
    """The address the service's listening socket is bound to, from the node's ``after``
    snapshot (the clients gone, the servers still up); None and why when it is not seen."""
    rows = sockets(ev, node, "after")
    if rows is None:
        return None, msg("detail.no_after_of", node=node)
    for row in rows:
        if row.state == "LISTEN" and row.local.port == port and row.proto == "tcp":
            ip = ANY_ADDRESS if row.local.ip in ("*", ANY_ADDRESS) else row.local.ip
            return ip, msg("detail.bind.listening", ip=ip, port=port)
    return None, msg("detail.bind.no_listener", port=port, node=node)


def bind_address(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The service's listening socket is bound to its ``bind`` address, and every SYN of
    the scenario is answered as that says: SYN-ACK on the bound address (on any of the
    node's addresses for 0.0.0.0), RST on another."""
    name = "bind address"
    service = topo.service(sc.service)
    bound = service.bind
    found = scope(topo, ev, sc)
    found = replace(found, service=replace(found.service, port=topo.scenario_port(sc)))
    conns = tcp_on(ev, service.node, found)
    if not conns:
        return none_seen(name, found, "SYNs")
    listening, said = listener(ev, service.node, service.port)
    problems = [] if listening == bound else [msg("detail.bind.not_on", said=said, bound=bound)]
    seen: dict[tuple[str, str], int] = {}
    for conn in conns:
        got = answer(conn)
        want = "SYN-ACK" if bound in (ANY_ADDRESS, conn.server.ip) else "RST"
        seen[(conn.server.ip, got)] = seen.get((conn.server.ip, got), 0) + 1
        if got != want:
            problems.append(
                msg("detail.bind.wrong", ip=conn.server.ip, got=_answer(got), want=_answer(want))
            )
    answers = join(
        msg("detail.bind.answered", ip=ip, got=_answer(got), n=n)
        for (ip, got), n in sorted(seen.items())
    )
    detail = msg("detail.bind.ok", bound=bound, said=said, answers=answers)
    once = {english(p): p for p in problems}  # each problem once, in order
    return Check.said(name, not problems, msg("detail.all", items=join([*once.values(), detail])))


def _answer(got: str) -> Msg | str:
    """An answer to a SYN as :func:`answer` names it; "nothing" in words."""
    return msg("said.nothing") if got == "nothing" else got


def port_range(ev: Evidence, node: str) -> tuple[int, int] | None:
    """The node's ephemeral port range as the run read it; None when missing or unreadable."""
    text = ev.snapshot(node, *PORT_RANGE_SNAPSHOT)
    words = text.split() if text is not None else []
    if len(words) != 2 or not all(w.isdigit() for w in words):
        return None
    return int(words[0]), int(words[1])


def _ss_ports(ev: Evidence, node: str, port: int) -> set[int] | None:
    """The local ports of the node's connections to ``port`` in its ``during`` snapshot."""
    rows = sockets(ev, node, "during")
    if rows is None:
        return None
    return {r.local.port for r in rows if r.remote.port == port and r.state != "LISTEN"}


def ephemeral_ports(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Clients that never bind: each connection's client port, in the server's capture,
    is distinct and inside the client node's ephemeral range (``ip_local_port_range``),
    and the client's ``during`` snapshot shows the same ports in use."""
    name = "ephemeral ports"
    found = scope(topo, ev, sc)
    conns = tcp_on(ev, found.service.node, found)
    if not conns:
        return none_seen(name, found)
    problems: list[Msg] = []
    parts: list[Msg] = []
    for node in sc.clients:
        ips = {str(i.address) for i in topo.node(node).interfaces}
        wire = sorted(c.client.port for c in conns if c.client.ip in ips)
        span = port_range(ev, node)
        if span is None:
            problems.append(msg("detail.ports.no_range", node=node))
            continue
        low, high = span
        outside = [p for p in wire if not low <= p <= high]
        if outside:
            problems.append(
                msg("detail.ports.outside", node=node, ports=outside, low=low, high=high)
            )
        if len(set(wire)) != len(wire):
            problems.append(msg("detail.ports.twice", node=node, ports=wire))
        ss = _ss_ports(ev, node, found.service.port)
        missing = sorted(set(wire) - (ss or set()))
        if ss is None or missing:
            problems.append(msg("detail.ports.not_during", node=node, ports=missing or wire))
        parts.append(msg("detail.ports.range", node=node, low=low, high=high, ports=wire))
    unseen = client_ports(ev, sc) - {c.client.port for c in conns}
    if unseen:
        problems.append(msg("detail.ports.unseen", ports=sorted(unseen)))
    return Check.said(name, not problems, msg("detail.all", items=join([*problems, *parts])))
