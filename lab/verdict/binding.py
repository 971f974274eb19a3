"""Claims on the addresses and ports a socket is bound to: a server bound to one address
answers only there, and a client that never binds gets a port of the kernel's ephemeral
range."""

from __future__ import annotations

from dataclasses import replace

from lab.evidence.analysis.tcp import SERVER, TcpConnection
from lab.evidence.folder import Evidence
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


def listener(ev: Evidence, node: str, port: int) -> tuple[str | None, str]:
    """The address the service's listening socket is bound to, from the node's ``after``
    snapshot (the clients gone, the servers still up); None and why when it is not seen."""
    rows = sockets(ev, node, "after")
    if rows is None:
        return None, f"no 'after' socket snapshot of {node}"
    for row in rows:
        if row.state == "LISTEN" and row.local.port == port and row.proto == "tcp":
            ip = ANY_ADDRESS if row.local.ip in ("*", ANY_ADDRESS) else row.local.ip
            return ip, f"listening on {ip}:{port} ('after' snapshot)"
    return None, f"no listening socket on port {port} in {node}'s 'after' snapshot"


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
    problems = [] if listening == bound else [f"{said}, not on {bound}"]
    seen: dict[tuple[str, str], int] = {}
    for conn in conns:
        got = answer(conn)
        want = "SYN-ACK" if bound in (ANY_ADDRESS, conn.server.ip) else "RST"
        seen[(conn.server.ip, got)] = seen.get((conn.server.ip, got), 0) + 1
        if got != want:
            problems.append(f"SYN to {conn.server.ip} answered by {got}, expected {want}")
    answers = "; ".join(
        f"SYN to {ip} answered by {got} x{n}" for (ip, got), n in sorted(seen.items())
    )
    detail = f"bound to {bound}: {said}; {answers}"
    return Check(name, not problems, "; ".join([*dict.fromkeys(problems), detail]))


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
    problems: list[str] = []
    parts: list[str] = []
    for node in sc.clients:
        ips = {str(i.address) for i in topo.node(node).interfaces}
        wire = sorted(c.client.port for c in conns if c.client.ip in ips)
        span = port_range(ev, node)
        if span is None:
            problems.append(f"no ephemeral range read on {node} (snapshots/before.portrange.txt)")
            continue
        low, high = span
        outside = [p for p in wire if not low <= p <= high]
        if outside:
            problems.append(f"{node}: ports {outside} outside its range {low}-{high}")
        if len(set(wire)) != len(wire):
            problems.append(f"{node}: a port used twice among {wire}")
        ss = _ss_ports(ev, node, found.service.port)
        missing = sorted(set(wire) - (ss or set()))
        if ss is None or missing:
            problems.append(f"{node}: ports {missing or wire} not in its 'during' snapshot")
        parts.append(f"{node}: range {low}-{high}, ports {wire} (capture and ss)")
    unseen = client_ports(ev, sc) - {c.client.port for c in conns}
    if unseen:
        problems.append(f"the clients' ports {sorted(unseen)} are not in the server's capture")
    return Check(name, not problems, "; ".join([*problems, *parts]))
