"""The course's experiments as checked claims.

A scenario may list ``claims:`` by name; each names one statement of the course ("the
active closer ends in TIME_WAIT", "a router rewrites MACs but not IPs") and is judged here
as a pure function of the topology, the results folder and the scenario. A claim returns a
``Check`` whose detail states the evidence either way, so that a failed claim says what
the wire or the snapshots showed instead.

A scenario's connections are found by their client ports (from the clients' own report in
run.json), the clients' addresses and the service's port, so that several scenarios on one
service and one client node never mix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from lab.evidence.analysis.paths import match_connections
from lab.evidence.analysis.snapshots import SocketRow, children, parse_sockets, zombies
from lab.evidence.analysis.tcp import CLIENT, SERVER, Segment, TcpConnection, tcp_connections
from lab.evidence.analysis.udp import UdpFlow, udp_flows
from lab.evidence.folder import Evidence
from lab.spec.model import Scenario, Service, Topology
from lab.verdict.checks import Check

ClaimFn = Callable[[Topology, Evidence, Scenario], Check]


# -- finding a scenario's traffic ----------------------------------------------------------


def _client_ports(ev: Evidence, sc: Scenario) -> set[int]:
    """The local ports the scenario's clients used, as they reported them."""
    ports: set[int] = set()
    clients = ev.run.get("scenarios", {}).get(sc.name, {}).get("clients", {})
    for node in sc.clients:
        result = (clients.get(node) or {}).get("result") or {}
        for conn in result.get("connections", []):
            local = conn.get("local")
            if isinstance(local, str) and local.rpartition(":")[2].isdigit():
                ports.add(int(local.rpartition(":")[2]))
    return ports


def _ips(topo: Topology, nodes: list[str] | tuple[str, ...]) -> set[str]:
    return {str(i.address) for n in nodes for i in topo.node(n).interfaces}


@dataclass(frozen=True)
class _Scope:
    service: Service
    server_ips: set[str]
    client_ips: set[str]
    ports: set[int]

    def owns(self, client_ip: str, client_port: int, server_ip: str, server_port: int) -> bool:
        return (
            server_port == self.service.port
            and server_ip in self.server_ips
            and client_ip in self.client_ips
            and client_port in self.ports
        )


def _scope(topo: Topology, ev: Evidence, sc: Scenario) -> _Scope:
    service = topo.service(sc.service)
    return _Scope(
        service,
        _ips(topo, [service.node]),
        _ips(topo, sc.clients),
        _client_ports(ev, sc),
    )


def _tcp_on(ev: Evidence, node: str, scope: _Scope) -> list[TcpConnection]:
    """The scenario's TCP connections as the captures of ``node`` saw them."""
    out: dict[tuple[str, int, str, int], TcpConnection] = {}
    for path in ev.captures(node):
        for conn in tcp_connections(ev.packets(path)):
            if scope.owns(*conn.four_tuple) and conn.four_tuple not in out:
                out[conn.four_tuple] = conn
    return list(out.values())


def _tcp(topo: Topology, ev: Evidence, sc: Scenario) -> tuple[_Scope, list[TcpConnection]]:
    scope = _scope(topo, ev, sc)
    return scope, _tcp_on(ev, scope.service.node, scope)


def _udp(topo: Topology, ev: Evidence, sc: Scenario) -> tuple[_Scope, list[UdpFlow]]:
    scope = _scope(topo, ev, sc)
    flows: dict[tuple[str, int, str, int], UdpFlow] = {}
    for path in ev.captures(scope.service.node):
        for flow in udp_flows(ev.packets(path)):
            # A flow's "client" is its first sender, which is the server when the
            # client's first datagram was not captured: take either orientation.
            ends = (*flow.four_tuple[2:], *flow.four_tuple[:2])
            if scope.owns(*flow.four_tuple) or scope.owns(*ends):
                flows.setdefault(flow.four_tuple, flow)
    return scope, list(flows.values())


def _client_sent(scope: _Scope, flow: UdpFlow, sender: str) -> bool:
    """Whether datagrams labelled ``sender`` in ``flow`` came from the scenario's client."""
    opened_by_client = scope.owns(*flow.four_tuple)
    return (sender == CLIENT) == opened_by_client


def _none_seen(name: str, scope: _Scope, what: str = "TCP connections") -> Check:
    return Check(
        name,
        False,
        f"no {what} of the scenario to {scope.service.name} (port {scope.service.port}) "
        f"in the captures of {scope.service.node} (client ports {sorted(scope.ports)})",
    )


def _first_failure(
    name: str, conns: list[TcpConnection], why: Callable[[TcpConnection], str | None], ok: str
) -> Check:
    """Pass when ``why`` finds nothing wrong with any connection; else show the first."""
    for conn in conns:
        problem = why(conn)
        if problem is not None:
            bad = sum(1 for c in conns if why(c) is not None)
            where = f"{conn.client} -> {conn.server}"
            return Check(name, False, f"{bad}/{len(conns)} connections fail; {where}: {problem}")
    return Check(name, True, f"{len(conns)}/{len(conns)} connections: {ok}")


# -- TCP: handshake and close ----------------------------------------------------------------


def _options(mss: int | None, wscale: int | None, sack: bool, ts: bool) -> str:
    parts = [f"mss {mss}"] if mss is not None else []
    parts += [f"wscale {wscale}"] if wscale is not None else []
    parts += ["sackOK"] if sack else []
    parts += ["TS"] if ts else []
    return "<" + " ".join(parts) + ">"


def handshake(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """SYN, SYN-ACK, ACK; each acknowledges the peer's ISN + 1; both SYNs carry an MSS."""
    scope, conns = _tcp(topo, ev, sc)
    if not conns:
        return _none_seen("handshake", scope)

    def why(c: TcpConnection) -> str | None:
        hs = c.handshake
        if not hs.ok:
            return hs.reason
        if hs.client_mss is None or hs.server_mss is None:
            return "a SYN without the MSS option"
        return None

    check = _first_failure("handshake", conns, why, "SYN, SYN-ACK, ACK")
    if not check.passed:
        return check
    hs = conns[0].handshake
    assert hs.client_isn is not None and hs.server_isn is not None
    c_opts = _options(
        hs.client_mss, hs.client_wscale, hs.client_sack_permitted, hs.client_timestamps
    )
    s_opts = _options(
        hs.server_mss, hs.server_wscale, hs.server_sack_permitted, hs.server_timestamps
    )
    detail = (
        f"{check.detail}; e.g. SYN seq={hs.client_isn} {c_opts}, "
        f"SYN-ACK seq={hs.server_isn} ack={hs.syn_ack_acknowledges}={hs.client_isn}+1 "
        f"{s_opts} ✓, ACK ack={hs.ack_acknowledges}={hs.server_isn}+1 ✓"
    )
    return Check("handshake", True, detail)


def four_way_close(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Each side sends a FIN and each FIN is acknowledged. Linux folds the passive side's
    ACK into its FIN when the program closes at once after reading EOF (FIN, FIN+ACK,
    ACK): still the four steps of the close, in three segments ("three-way"); both forms
    pass. When the service waits after EOF before closing (``close_delay``), the ACK
    leaves alone and only four segments (FIN, ACK, FIN, ACK: "four-way") pass."""
    scope, conns = _tcp(topo, ev, sc)
    if not conns:
        return _none_seen("four-way close", scope)
    delay = scope.service.option("close_delay") or 0
    kinds = ("four-way",) if delay else ("four-way", "three-way")

    def why(c: TcpConnection) -> str | None:
        if c.close.kind not in kinds or not c.close.complete:
            steps = "; ".join(s.description for s in c.close.steps) or "no FIN or RST"
            if c.close.kind == "three-way" and delay:
                steps += f" (three segments although the server waits {delay:g} s after EOF)"
            return f"close was {c.close.kind}: {steps}"
        return None

    ok = "FIN and ACK each way"
    if delay:
        ok += f", in four segments as the server waits {delay:g} s after EOF"
    check = _first_failure("four-way close", conns, why, ok)
    if not check.passed:
        return check
    seen = sorted({_CLOSE_FORMS.get(c.close.kind, c.close.kind) for c in conns})
    steps = " -> ".join(s.description for s in conns[0].close.steps)
    return Check("four-way close", True, f"{check.detail} ({', '.join(seen)}); e.g. {steps}")


_CLOSE_FORMS = {
    "four-way": "four-way: FIN, ACK, FIN, ACK in four segments",
    "three-way": "three-way: FIN, FIN+ACK, ACK, the ACK riding on the FIN",
}


def close_wait_on_server(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The server is the passive closer: it acknowledges the client's FIN no later than it
    sends its own FIN, so it passed through CLOSE_WAIT (FIN received, not yet closed)."""
    scope, conns = _tcp(topo, ev, sc)
    if not conns:
        return _none_seen("server passes CLOSE_WAIT", scope)

    def why(c: TcpConnection) -> str | None:
        cl = c.close
        if cl.first_fin_by != CLIENT or cl.client_fin_index is None:
            return f"the first FIN was the {cl.first_fin_by or 'nobody'}'s (close {cl.kind})"
        if cl.server_fin_index is None:
            return "the server never sent its FIN"
        if cl.first_fin_ack_index is None or cl.first_fin_ack_index > cl.server_fin_index:
            return "the server sent its FIN before acknowledging the client's"
        return None

    check = _first_failure(
        "server passes CLOSE_WAIT",
        conns,
        why,
        "client FIN, then the server ACKs it, then (same or later segment) the server's FIN",
    )
    if not check.passed:
        return check
    cl = conns[0].close
    return Check(
        check.name,
        True,
        f"{check.detail}; e.g. client FIN #{cl.client_fin_index}, server ACK "
        f"#{cl.first_fin_ack_index}, server FIN #{cl.server_fin_index}",
    )


def _sockets(ev: Evidence, node: str, phase: str) -> list[SocketRow] | None:
    for kind in ("ss", "netstat"):
        text = ev.snapshot(node, phase, kind)
        if text is not None:
            return parse_sockets(text)
    return None


def _closed_first_by(name: str, conns: list[TcpConnection], side: str) -> Check:
    """Every connection's first FIN came from ``side``, which alone ends in TIME_WAIT."""
    return _first_failure(
        name,
        conns,
        lambda c: (
            None
            if c.close.time_wait_by == (side,)
            else f"close {c.close.kind}, TIME_WAIT goes to {c.close.time_wait_by or 'nobody'}"
        ),
        f"the {side}'s FIN came first",
    )


def time_wait_on_client(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The client closes first (pcap) and its sockets are in TIME_WAIT in the "after"
    snapshot of the client nodes, while the server holds none of them in TIME_WAIT."""
    name = "TIME_WAIT on the client"
    scope, conns = _tcp(topo, ev, sc)
    if not conns:
        return _none_seen(name, scope)
    wire = _closed_first_by(name, conns, CLIENT)
    if not wire.passed:
        return wire
    in_tw: set[int] = set()
    for node in sc.clients:
        rows = _sockets(ev, node, "after")
        if rows is None:
            return Check(name, False, f"no 'after' socket snapshot of {node}")
        in_tw |= {
            r.local.port
            for r in rows
            if r.state == "TIME_WAIT" and r.remote.port == scope.service.port
        }
    server_rows = _sockets(ev, scope.service.node, "after") or []
    server_tw = [r for r in server_rows if r.state == "TIME_WAIT" and r.remote.port in scope.ports]
    missing = sorted(scope.ports - in_tw)
    detail = (
        f"{wire.detail}; after: {len(scope.ports & in_tw)}/{len(scope.ports)} client sockets "
        f"in TIME_WAIT, {len(server_tw)} on the server"
    )
    if missing:
        detail += f"; not in TIME_WAIT: client ports {missing[:5]}"
    return Check(name, not missing and not server_tw and bool(scope.ports), detail)


def half_close(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The client's FIN closes only its sending half: after it, the server still sends
    (its FIN, and any data) and the client still receives and acknowledges, with no RST."""
    name = "half-close"
    scope, conns = _tcp(topo, ev, sc)
    if not conns:
        return _none_seen(name, scope)

    def after_fin(c: TcpConnection) -> tuple[int, int]:
        fin = c.close.client_fin_index or 0
        later = [s for s in c.segments if s.index > fin and s.sender == SERVER]
        return sum(s.payload_len for s in later), len(later)

    def why(c: TcpConnection) -> str | None:
        cl = c.close
        if cl.first_fin_by != CLIENT:
            return f"the client did not close first (close {cl.kind})"
        if any(s.has("RST") for s in c.segments):
            return "a RST ended the connection"
        if cl.server_fin_index is None or cl.last_ack_index is None:
            return "the server's FIN after the client's was never acknowledged by the client"
        return None

    check = _first_failure(
        name, conns, why, "client FIN, then the server's segments still received and ACKed"
    )
    data = sum(after_fin(c)[0] for c in conns)
    segs = sum(after_fin(c)[1] for c in conns)
    return Check(
        name,
        check.passed,
        f"{check.detail}; {segs} server segments ({data} data bytes) after the client's FIN",
    )


# -- UDP ---------------------------------------------------------------------------------------


def no_handshake(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The first packet of every flow is the client's first datagram: no set-up exchange,
    and no TCP at all between the scenario's hosts on the service's port."""
    name = "no handshake"
    scope, flows = _udp(topo, ev, sc)
    if not flows:
        return _none_seen(name, scope, "UDP datagrams")
    tcp = [
        p
        for path in ev.captures(scope.service.node)
        for p in ev.packets(path)
        if p.protocol == "tcp" and scope.service.port in (p.src_port, p.dst_port)
    ]
    first = sc.send[0].encode()
    bad = [
        f
        for f in flows
        if not _client_sent(scope, f, f.datagrams[0].sender) or f.datagrams[0].payload != first
    ]
    detail = (
        f"{len(flows)} flows, each opened by the client's datagram {first!r} "
        f"({len(first)} bytes); {len(tcp)} TCP segments on port {scope.service.port}"
    )
    if bad:
        d = bad[0].datagrams[0]
        who = "client" if _client_sent(scope, bad[0], d.sender) else "server"
        detail += f"; {bad[0].client} <-> {bad[0].server} began with the {who}'s {d.payload!r}"
    return Check(name, not bad and not tcp, detail)


def no_time_wait(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Nothing of the scenario is left in TIME_WAIT (or any TCP state) on either side."""
    scope = _scope(topo, ev, sc)
    left: list[str] = []
    for node in {scope.service.node, *sc.clients}:
        rows = _sockets(ev, node, "after")
        if rows is None:
            return Check("no TIME_WAIT", False, f"no 'after' socket snapshot of {node}")
        port = scope.service.port
        left += [
            f"{node} {r.local}->{r.remote} {r.state}"
            for r in rows
            if r.state == "TIME_WAIT" and port in (r.local.port, r.remote.port)
        ]
    detail = f"{len(left)} TIME_WAIT sockets on port {scope.service.port} after the clients left"
    if left:
        detail += ": " + ", ".join(left[:3])
    return Check("no TIME_WAIT", not left, detail)


def datagram_boundaries(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Each item sent is one datagram, and each reply one datagram of the same bytes."""
    name = "datagram boundaries"
    scope, flows = _udp(topo, ev, sc)
    if not flows:
        return _none_seen(name, scope, "UDP datagrams")
    sent = [s.encode() for s in sc.send]
    back = [s.encode() for s in sc.expect]
    for f in flows:
        got_c = [d.payload for d in f.datagrams if _client_sent(scope, f, d.sender)]
        got_s = [d.payload for d in f.datagrams if not _client_sent(scope, f, d.sender)]
        if got_c != sent or got_s != back:
            return Check(
                name,
                False,
                f"{f.client} -> {f.server}: client datagrams {got_c!r}, server {got_s!r}; "
                f"expected {sent!r} and {back!r}",
            )
    sizes = [len(s) for s in sent]
    return Check(
        name, True, f"{len(flows)} flows: client datagrams of {sizes} bytes, echoed one for one"
    )


# -- the dictionary -----------------------------------------------------------------------------


def utf8_on_wire(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Every non-ASCII expected reply travels server -> client as its UTF-8 bytes."""
    name = "UTF-8 on the wire"
    wanted = [s for s in sc.expect if not s.isascii()]
    if not wanted:
        return Check(name, False, "no non-ASCII reply in 'expect' to look for")
    scope, conns = _tcp(topo, ev, sc)
    if not conns:
        return _none_seen(name, scope)
    for c in conns:
        stream = b"".join(s.payload for s in c.data_segments if s.sender == SERVER)
        missing = [w for w in wanted if w.encode("utf-8") + b"\n" not in stream]
        if missing:
            return Check(
                name,
                False,
                f"{c.client} -> {c.server}: server sent {stream[:80]!r}; missing "
                f"{', '.join(f'{w} ({_hex(w)})' for w in missing)}",
            )
    shown = ", ".join(f"{w} = {_hex(w)}" for w in wanted)
    return Check(name, True, f"{len(conns)} connections; server -> client bytes: {shown}")


def _hex(text: str) -> str:
    return text.encode("utf-8").hex(" ")


# -- processes -----------------------------------------------------------------------------------


def _pid(ev: Evidence, service: Service) -> int | None:
    info: Mapping[str, Any] = ev.run.get("services", {}).get(service.name) or {}
    return int(info["pid"]) if info.get("pid") else None


def _held(topo: Topology, service: Service) -> int:
    """Connections held open on the service when the "during" snapshot is taken."""
    return sum(
        s.total_connections for s in topo.scenarios if s.service == service.name and s.hold > 0
    )


def _served(topo: Topology, service: Service) -> int:
    return sum(s.total_connections for s in topo.scenarios if s.service == service.name)


def n_children(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """N held connections -> N live children of the server."""
    name = "N connections, N children"
    service = topo.service(sc.service)
    pid, held = _pid(ev, service), _held(topo, service)
    during = ev.processes(service.node, "during")
    if pid is None or during is None:
        return Check(name, False, "no server pid or no 'during' snapshot")
    if not held:
        return Check(name, False, "no scenario holds connections on the service (set hold)")
    kids = [r for r in children(during, pid) if not r.zombie]
    return Check(
        name,
        len(kids) == held,
        f"{len(kids)} live children of pid {pid} for {held} held connections",
    )


def _zombie_count(topo: Topology, ev: Evidence, sc: Scenario) -> tuple[int, int | None, str]:
    service = topo.service(sc.service)
    pid = _pid(ev, service)
    after = ev.processes(service.node, "after")
    if pid is None or after is None:
        return -1, pid, "no server pid or no 'after' snapshot"
    return len(zombies(after, pid)), pid, ""


def children_reaped(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """After the clients left, the server has no zombie child."""
    name = "children reaped"
    count, pid, problem = _zombie_count(topo, ev, sc)
    if problem:
        return Check(name, False, problem)
    service = topo.service(sc.service)
    how = " (no SIGCHLD handler: --no-reap)" if service.option("no_reap") else ""
    detail = f"{count} zombie children of pid {pid}{how} after the clients left"
    return Check(name, count == 0, detail)


def zombies_kept(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Without reaping, every served connection leaves one zombie child."""
    name = "N zombies"
    count, pid, problem = _zombie_count(topo, ev, sc)
    if problem:
        return Check(name, False, problem)
    want = _served(topo, topo.service(sc.service))
    return Check(name, count == want, f"{count} zombie children of pid {pid}, expected {want}")


def one_process_n_threads(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """N held connections -> one process (no child) with N+1 threads (one per connection,
    plus the accepting main thread)."""
    name = "one process, N+1 threads"
    service = topo.service(sc.service)
    pid, held = _pid(ev, service), _held(topo, service)
    during = ev.processes(service.node, "during")
    if pid is None or during is None or not held:
        return Check(name, False, "no server pid, no 'during' snapshot or no held connections")
    me = next((r for r in during if r.pid == pid), None)
    kids = children(during, pid)
    threads = me.nlwp if me else 0
    return Check(
        name,
        me is not None and not kids and threads == held + 1,
        f"pid {pid}: {len(kids)} child processes, {threads} threads for {held} held "
        f"connections (expected {held + 1})",
    )


# -- flow control ------------------------------------------------------------------------------


def _at(c: TcpConnection, index: int, time: float) -> str:
    return f"#{index} (+{time - c.start_time:.2f} s)"


def zero_window(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The client, not reading, advertises window 0; the server, with replies still to
    send, probes the closed window (zero-window probes) while it stays 0."""
    name = "zero window"
    scope, conns = _tcp(topo, ev, sc)
    if not conns:
        return _none_seen(name, scope)

    def why(c: TcpConnection) -> str | None:
        zeros = [e for e in c.zero_windows if e.sender == CLIENT]
        if not zeros:
            wins = [s.window_bytes for s in c.segments if s.sender == CLIENT and s.window_bytes]
            return f"the client never advertised window 0 (smallest {min(wins, default=0)} bytes)"
        if not [p for p in c.zero_window_probes if p.sender == SERVER]:
            return f"the client advertised window 0 {len(zeros)} times; the server never probed"
        return None

    check = _first_failure(name, conns, why, "the client's window fell to 0, the server probed")
    if not check.passed:
        return check
    c = conns[0]
    zero = next(e for e in c.zero_windows if e.sender == CLIENT)
    probes = [p for p in c.zero_window_probes if p.sender == SERVER]
    shown = ", ".join(f"+{p.time - c.start_time:.2f} s" for p in probes[:6])
    detail = (
        f"{check.detail}; e.g. client window 0 first at {_at(c, zero.index, zero.time)}, "
        f"{sum(e.sender == CLIENT for e in c.zero_windows)} zero-window segments; "
        f"{len(probes)} server probes at {shown}"
    )
    return Check(name, True, detail)


def _reopening(c: TcpConnection) -> tuple[str, int, float] | None:
    """The client's window update (no data, same ack, a new window) after its last zero
    window, as (what, index, time); None if the window never closed or never reopened so."""
    zeros = [e.index for e in c.zero_windows if e.sender == CLIENT]
    if not zeros:
        return None
    for u in c.window_updates:
        if u.sender == CLIENT and u.index > zeros[-1]:
            return f"window update 0 -> {u.window_bytes} bytes", u.index, u.time
    return None


def window_reopens(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """After its last zero window the client announces an open window (a window update),
    the server's stalled data flows again, and every reply arrives, complete and right:
    on the wire (the server's byte count) and in the client's report."""
    name = "window reopens"
    scope, conns = _tcp(topo, ev, sc)
    if not conns:
        return _none_seen(name, scope)
    want = sum(len(line.encode()) + 1 for line in sc.expected_replies)

    def why(c: TcpConnection) -> str | None:
        reopened = _reopening(c)
        if reopened is None:
            return "no window update from the client after a zero window"
        after = [s for s in c.data_segments if s.sender == SERVER and s.index > reopened[1]]
        if not after:
            return f"no server data after the reopening ({reopened[0]})"
        if c.server_bytes != want:
            return f"the server sent {c.server_bytes} bytes, the replies are {want}"
        return None

    check = _first_failure(name, conns, why, f"reopened, then all {want} reply bytes sent")
    replies = _reply_count(ev, sc)
    total = len(sc.expected_replies) * sc.total_connections
    detail = f"{check.detail}; {replies}/{total} replies right in the clients' report"
    if check.passed:
        c = conns[0]
        how, index, time = _reopening(c) or ("", 0, 0.0)
        detail += f"; e.g. {how} at {_at(c, index, time)}"
    return Check(name, check.passed and replies == total, detail)


def _reply_count(ev: Evidence, sc: Scenario) -> int:
    """Replies the scenario's clients got as expected, counted per connection in order."""
    clients = ev.run.get("scenarios", {}).get(sc.name, {}).get("clients", {})
    expected = list(sc.expected_replies)
    good = 0
    for node in sc.clients:
        result = (clients.get(node) or {}).get("result") or {}
        for conn in result.get("connections", []):
            got = conn.get("replies", [])
            good += sum(1 for a, b in zip(got, expected, strict=False) if a == b)
    return good


# -- the iterative server ----------------------------------------------------------------------


def _others(ev: Evidence, scope: _Scope, mine: list[TcpConnection]) -> list[TcpConnection]:
    """Connections to the same service that are not the scenario's own (its neighbours)."""
    own = {c.four_tuple for c in mine}
    out: dict[tuple[str, int, str, int], TcpConnection] = {}
    for path in ev.captures(scope.service.node):
        for c in tcp_connections(ev.packets(path)):
            ip, port = c.server.ip, c.server.port
            if port == scope.service.port and ip in scope.server_ips and c.four_tuple not in own:
                out.setdefault(c.four_tuple, c)
    return list(out.values())


def _first_reply(c: TcpConnection) -> float | None:
    return next((s.time for s in c.data_segments if s.sender == SERVER), None)


def _fin_time(c: TcpConnection, index: int | None) -> float | None:
    return next((s.time for s in c.segments if s.index == index), None) if index else None


def served_in_turn(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """One client at a time: each connection's handshake completes while another is still
    being served (the kernel queues it), but its first reply comes only after that other
    connection has ended (the server's FIN to it)."""
    name = "served in turn"
    scope, conns = _tcp(topo, ev, sc)
    if not conns:
        return _none_seen(name, scope)
    others = _others(ev, scope, conns)
    notes: list[str] = []

    def why(c: TcpConnection) -> str | None:
        done, reply = c.handshake.ack_time, _first_reply(c)
        if done is None or reply is None:
            return "no complete handshake or no reply"
        busy = [
            o
            for o in others
            if o.handshake.ack_time is not None
            and o.handshake.ack_time < done
            and (_fin_time(o, o.close.server_fin_index) or o.end_time) > done
        ]
        if not busy:
            return "no other connection was being served when its handshake completed"
        o = max(busy, key=lambda x: _fin_time(x, x.close.server_fin_index) or x.end_time)
        fin = _fin_time(o, o.close.server_fin_index)
        if fin is None or reply < fin:
            return f"first reply at +{reply - done:.2f} s, before {o.client} was done"
        notes.append(
            f"{c.client}: handshake done {fin - done:.2f} s before {o.client}'s server FIN, "
            f"first reply {reply - fin:.3f} s after it"
        )
        return None

    check = _first_failure(name, conns, why, "connected while another was served, then served")
    detail = check.detail + (f"; e.g. {notes[0]}" if check.passed and notes else "")
    return Check(name, check.passed, detail)


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


def syn_retransmitted(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """With the accept queue full (at least ``backlog`` connections done with their
    handshake and not yet accepted), the server drops a new SYN; the client sends it again,
    same ISN, after its retransmission timeout (1 s, then 2 s more ...)."""
    name = "SYN retransmitted"
    scope, conns = _tcp(topo, ev, sc)
    if not conns:
        return _none_seen(name, scope)
    backlog = int(scope.service.option("backlog") or 128)
    others = _others(ev, scope, conns)
    again = [c for c in conns if c.handshake.syn_retransmissions > 0]
    if not again:
        return Check(name, False, f"0/{len(conns)} connections had their SYN sent again")
    problems: list[str] = []
    for c in again:
        syns = [s for s in c.segments if s.sender == CLIENT and s.has("SYN") and not s.has("ACK")]
        waiting, served = _queued_at(others, syns[0].time)
        if waiting < backlog:
            problems.append(f"{c.client}: {waiting} connections waiting at its first SYN")
    c = again[0]
    syns = [s for s in c.segments if s.sender == CLIENT and s.has("SYN") and not s.has("ACK")]
    waiting, served = _queued_at(others, syns[0].time)
    times = ", ".join(f"+{s.time - syns[0].time:.1f} s" for s in syns)
    answered = c.handshake.syn_ack_time
    detail = (
        f"{len(again)}/{len(conns)} connections sent their SYN again; e.g. {c.client}: "
        f"SYN seq={c.handshake.client_isn} sent {len(syns)} times ({times}), "
        f"SYN-ACK at +{(answered or syns[0].time) - syns[0].time:.1f} s; at the first SYN "
        f"{waiting} connections waited (backlog {backlog}) and {served} was served"
    )
    if problems:
        detail += "; not with a full queue: " + "; ".join(problems[:3])
    return Check(name, not problems, detail)


# -- routing ---------------------------------------------------------------------------------


def _hops(topo: Topology, ev: Evidence, sc: Scenario) -> tuple[list[str], list[Any]]:
    """The scenario's connections matched between each client's and the server's capture."""
    scope = _scope(topo, ev, sc)
    server_side = _tcp_on(ev, scope.service.node, scope)
    problems, hops = [], []
    for node in sc.clients:
        client_side = _tcp_on(ev, node, scope)
        matches = match_connections(client_side, server_side, node, scope.service.node)
        if not matches:
            problems.append(f"no connection seen in both {node}'s and the server's captures")
        for m in matches:
            hops += [h for h in (m.client_to_server, m.server_to_client) if h is not None]
    if not hops and not problems:
        problems.append("no packet of the scenario seen in both captures")
    return problems, hops


def ips_unchanged_macs_rewritten(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The same packet on both sides of the router: same IP addresses, other MACs."""
    name = "IPs unchanged, MACs rewritten"
    problems, hops = _hops(topo, ev, sc)
    if problems:
        return Check(name, False, "; ".join(problems))
    bad = [h for h in hops if h.ips_rewritten or h.macs_rewritten is not True]
    h = (bad or hops)[0]
    up, down = h.upstream, h.downstream
    detail = (
        f"{len(hops) - len(bad)}/{len(hops)} hops; e.g. {h.direction} {'+'.join(h.flags)}: "
        f"{up.src_ip}->{up.dst_ip} {up.src_mac}->{up.dst_mac} on {up.capture}, "
        f"{down.src_ip}->{down.dst_ip} {down.src_mac}->{down.dst_mac} on {down.capture}"
    )
    return Check(name, not bad, detail)


def ttl_decremented(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The same packet on both sides of the router: the TTL is one less downstream."""
    name = "TTL decremented"
    problems, hops = _hops(topo, ev, sc)
    if problems:
        return Check(name, False, "; ".join(problems))
    bad = [h for h in hops if h.ttl_change != -1]
    h = (bad or hops)[0]
    detail = (
        f"{len(hops) - len(bad)}/{len(hops)} hops one less; e.g. {h.direction}: TTL "
        f"{h.upstream.ttl} on {h.upstream.capture} -> {h.downstream.ttl} on {h.downstream.capture}"
    )
    return Check(name, not bad, detail)


# -- errors ------------------------------------------------------------------------------------


def _probe_scope(topo: Topology, ev: Evidence, sc: Scenario) -> _Scope:
    """The scenario's scope on the port its probes dial (the refused probe's own port)."""
    scope = _scope(topo, ev, sc)
    return replace(scope, service=replace(scope.service, port=topo.scenario_port(sc)))


def _probe_results(ev: Evidence, sc: Scenario) -> dict[str, dict[str, Any]]:
    """Each client node's probe report (its one connection), for the nodes that have one."""
    clients = ev.run.get("scenarios", {}).get(sc.name, {}).get("clients", {})
    out = {}
    for node in sc.clients:
        result = (clients.get(node) or {}).get("result") or {}
        conns = result.get("connections") or [{}]
        if result.get("program") == "probe":
            out[node] = conns[0]
    return out


def _reported(ev: Evidence, sc: Scenario, errno_name: str) -> tuple[bool, str]:
    """Whether every client's probe ended with ``errno_name``, and the failing call(s)."""
    results = _probe_results(ev, sc)
    said = []
    for node in sc.clients:
        conn = results.get(node)
        if conn is None:
            return False, f"{node} left no probe report"
        failed = [e for e in conn.get("events", []) if e.get("error")]
        said.append(f"{node}: {failed[-1]['detail'] if failed else 'no call failed'}")
        if conn.get("error") != errno_name:
            return False, "; ".join(said)
    return True, "; ".join(said)


def _seg_text(seg: Segment) -> str:
    return f"#{seg.index} {seg.sender} {'+'.join(seg.flags)} seq={seg.seq} ack={seg.ack}"


def refused_by_rst(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """A connect to a port nothing listens on: the client's SYN is answered by RST+ACK
    acknowledging SYN + 1 (no SYN-ACK), and the client reports ECONNREFUSED."""
    name = "refused by RST"
    scope = _probe_scope(topo, ev, sc)
    conns = _tcp_on(ev, scope.service.node, scope)
    if not conns:
        return _none_seen(name, scope, "SYNs")

    def why(c: TcpConnection) -> str | None:
        syn = next((s for s in c.segments if s.sender == CLIENT and s.flags == ("SYN",)), None)
        if syn is None:
            return "no SYN from the client captured"
        if any(s.sender == SERVER and s.has("SYN") for s in c.segments):
            return "the server answered with SYN-ACK: something listens there"
        rst = next((s for s in c.segments if s.sender == SERVER and s.has("RST")), None)
        if rst is None:
            return "the server never answered the SYN with RST"
        if not rst.has("ACK") or rst.ack != (syn.seq + 1) % (1 << 32):
            return f"the RST ({_seg_text(rst)}) does not acknowledge SYN seq + 1 = {syn.seq + 1}"
        return None

    wire = _first_failure(name, conns, why, "SYN answered by RST+ACK")
    said_ok, said = _reported(ev, sc, "ECONNREFUSED")
    detail = f"{wire.detail}; {said}"
    if wire.passed:
        syn = next(s for s in conns[0].segments if s.flags == ("SYN",))
        rst = next(s for s in conns[0].segments if s.has("RST"))
        detail = f"{wire.detail}: SYN seq={syn.seq} -> RST+ACK ack={rst.ack}; {said}"
    return Check(name, wire.passed and said_ok, detail)


def epipe_after_reset(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The server closes first; the client writes anyway and the server answers with RST;
    the client's next write fails with EPIPE (SIGPIPE ignored)."""
    name = "EPIPE after reset"
    scope, conns = _tcp(topo, ev, sc)
    if not conns:
        return _none_seen(name, scope)

    Found = tuple[Segment | None, Segment | None, Segment | None]

    def sequence(c: TcpConnection) -> Found:
        """The server's FIN, the client's first data after it, the server's RST after that."""
        fin: Segment | None = None
        data: Segment | None = None
        for seg in c.segments:
            if fin is None:
                fin = seg if seg.sender == SERVER and seg.has("FIN") else None
            elif data is None:
                data = seg if seg.sender == CLIENT and seg.payload_len > 0 else None
            elif seg.sender == SERVER and seg.has("RST"):
                return fin, data, seg
        return fin, data, None

    def why(c: TcpConnection) -> str | None:
        fin, data, rst = sequence(c)
        if fin is None or c.close.first_fin_by != SERVER:
            return f"the server did not close first (close {c.close.kind})"
        if data is None:
            return "the client wrote nothing after the server's FIN"
        if rst is None:
            return "the server never answered the client's write with RST"
        return None

    wire = _first_failure(name, conns, why, "server FIN, client data, server RST")
    said_ok, said = _reported(ev, sc, "EPIPE")
    detail = f"{wire.detail}; {said}"
    fin, data, rst = sequence(conns[0])
    if wire.passed and fin is not None and data is not None and rst is not None:
        detail = (
            f"{wire.detail}: server FIN #{fin.index}, client data ({data.payload_len} bytes) "
            f"#{data.index}, server RST #{rst.index}; then {said}"
        )
    return Check(name, wire.passed and said_ok, detail)


def _restarts(ev: Evidence, sc: Scenario, reuseaddr: bool) -> list[dict[str, Any]]:
    done = ev.run.get("scenarios", {}).get(sc.name, {}).get("restarts", [])
    return [r for r in done if r.get("reuseaddr") is reuseaddr]


def _time_wait_at(ev: Evidence, node: str, phase: str, port: int) -> list[SocketRow] | None:
    """TIME_WAIT sockets on ``port`` (local: the server's side) in a snapshot, or None."""
    rows = _sockets(ev, node, phase)
    if rows is None:
        return None
    return [r for r in rows if r.state == "TIME_WAIT" and r.local.port == port]


def _log(ev: Evidence, restart: dict[str, Any]) -> str:
    path = ev.root / str(restart.get("log", ""))
    return path.read_text(errors="replace").strip() if path.is_file() else ""


def _restart_time_wait(
    ev: Evidence, scope: _Scope, restart: dict[str, Any]
) -> tuple[str | None, str]:
    """(problem, fact) about the TIME_WAIT the restart met, from its snapshot."""
    port, node = scope.service.port, scope.service.node
    tw = _time_wait_at(ev, node, str(restart.get("snapshot")), port)
    if tw is None:
        return f"no snapshot {restart.get('snapshot')!r} of {node}", ""
    ours = [r for r in tw if r.remote.port in scope.ports]
    fact = f"{len(tw)} TIME_WAIT on {node}:{port} at the restart ({len(ours)} of the scenario)"
    return (None if ours else f"{fact}: none of the scenario's connections"), fact


def eaddrinuse_in_time_wait(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The server closed first (pcap), so TIME_WAIT is on its port when it restarts
    (snapshot); started again without SO_REUSEADDR, its bind fails with EADDRINUSE (log)
    and it exits 1."""
    name = "EADDRINUSE in TIME_WAIT"
    scope, conns = _tcp(topo, ev, sc)
    tries = _restarts(ev, sc, reuseaddr=False)
    if not tries:
        return Check(name, False, "no restart without reuseaddr was recorded")
    if not conns:
        return _none_seen(name, scope)
    wire = _closed_first_by(name, conns, SERVER)
    if not wire.passed:
        return wire
    for r in tries:
        problem, fact = _restart_time_wait(ev, scope, r)
        log = _log(ev, r)
        if problem is None and r.get("listening"):
            problem = f"{fact}, yet the start without reuseaddr listens"
        if problem is None and ("EADDRINUSE" not in log or r.get("exit_status") != 1):
            problem = f"{fact}; exit {r.get('exit_status')}, log {log[-100:]!r}"
        if problem is not None:
            return Check(name, False, f"{wire.detail}; {problem}")
    last = tries[-1]
    detail = (
        f"{wire.detail}; {fact}; restart without reuseaddr: exit {last.get('exit_status')}, "
        f"log {_log(ev, last).splitlines()[-1]!r}"
    )
    return Check(name, True, detail)


def reuseaddr_rebinds(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Started again with SO_REUSEADDR while TIME_WAIT is still on its port (snapshot),
    the server binds and listens. On Linux this needs SO_REUSEADDR on the TIME_WAIT
    socket too, which it inherits from the listener that accepted the connection."""
    name = "SO_REUSEADDR rebinds"
    scope = _scope(topo, ev, sc)
    tries = _restarts(ev, sc, reuseaddr=True)
    if not tries:
        return Check(name, False, "no restart with reuseaddr was recorded")
    for r in tries:
        problem, fact = _restart_time_wait(ev, scope, r)
        if problem is None and not r.get("listening"):
            problem = f"{fact}, yet the start with reuseaddr did not listen: {_log(ev, r)[-100:]!r}"
            if not scope.service.option("reuseaddr"):
                problem += (
                    " (the first server had no reuseaddr: Linux requires SO_REUSEADDR on "
                    "the TIME_WAIT socket as well, inherited from its listener)"
                )
        if problem is not None:
            return Check(name, False, problem)
    listen = " ".join(str(tries[-1].get("listen_socket", "")).split())
    return Check(name, True, f"{fact}; restart with reuseaddr listens: {listen}")


CLAIMS: Mapping[str, ClaimFn] = {
    "handshake": handshake,
    "four-way-close": four_way_close,
    "close-wait-on-server": close_wait_on_server,
    "time-wait-on-client": time_wait_on_client,
    "half-close": half_close,
    "no-handshake": no_handshake,
    "no-time-wait": no_time_wait,
    "datagram-boundaries": datagram_boundaries,
    "utf8-on-wire": utf8_on_wire,
    "n-children": n_children,
    "children-reaped": children_reaped,
    "zombies": zombies_kept,
    "one-process-n-threads": one_process_n_threads,
    "ips-unchanged-macs-rewritten": ips_unchanged_macs_rewritten,
    "ttl-decremented": ttl_decremented,
    "refused-by-rst": refused_by_rst,
    "epipe-after-reset": epipe_after_reset,
    "eaddrinuse-in-time-wait": eaddrinuse_in_time_wait,
    "reuseaddr-rebinds": reuseaddr_rebinds,
    "zero-window": zero_window,
    "window-reopens": window_reopens,
    "served-in-turn": served_in_turn,
    "syn-retransmitted": syn_retransmitted,
}


def claim_checks(topo: Topology, ev: Evidence, sc: Scenario) -> list[Check]:
    """The checks of the claims a scenario makes, in the order it lists them."""
    return [CLAIMS[name](topo, ev, sc) for name in sc.claims]
