"""A client and the server's early close: after the server's FIN the client's next write
meets the close (the server answers it with RST), and its ``read`` returns 0; a client that
checks what ``read`` returned stops there and says so (``str_cli``: "server terminated
prematurely"). One that does not goes on as if nothing happened: it prints nothing, says
nothing, and waits for a reply that cannot come until it is killed (or writes on into
EPIPE)."""

from __future__ import annotations

from lab.evidence.analysis.tcp import CLIENT, SERVER, Segment, TcpConnection
from lab.evidence.folder import Evidence
from lab.spec.model import Scenario, Topology
from lab.verdict.check import Check
from lab.verdict.scope import line_connections, none_seen, scenario_clients, tcp


def _after_server_fin(c: TcpConnection) -> tuple[Segment | None, list[Segment]]:
    """The server's FIN and the client's data segments sent after it."""
    fin = next((s for s in c.segments if s.sender == SERVER and s.has("FIN")), None)
    if fin is None:
        return None, []
    later = [s for s in c.segments if s.time >= fin.time and s.index > fin.index]
    return fin, [s for s in later if s.sender == CLIENT and s.payload_len > 0]


def _wire(conns: list[TcpConnection]) -> tuple[bool, str]:
    """The server closed first on every connection; what the client sent after that."""
    for c in conns:
        fin, data = _after_server_fin(c)
        client_fin = next((s for s in c.segments if s.sender == CLIENT and s.has("FIN")), None)
        if fin is None or (client_fin is not None and client_fin.time < fin.time):
            return False, f"{c.client}: the server did not close first"
    fin, data = _after_server_fin(conns[0])
    sent = b"".join(s.payload for s in data)
    reset = any(s.sender == SERVER and s.has("RST") for s in conns[0].segments)
    return True, (
        f"the server's FIN came first (#{fin.index if fin else '?'}); after it the client "
        f"sent {len(data)} data segment(s) ({sent[:40]!r})" + (", answered by RST" if reset else "")
    )


def close_noticed(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The server closed first, and every client then stopped by itself, saying why: it
    exited (not killed after the lab's reply timeout) with a message on its stderr."""
    name = "early close noticed"
    scope, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen(name, scope)
    wire_ok, wire = _wire(conns)
    problems: list[str] = []
    said = ""
    for node, client in sorted(scenario_clients(ev, sc).items()):
        words = client.stderr.strip()
        for conn in line_connections(client):
            if conn.error is None or not conn.error.startswith("exited"):
                why = conn.error or "it got every reply"
                problems.append(f"{node} #{conn.index}: {why}, having said nothing of the close")
            elif not words:
                problems.append(f"{node} #{conn.index}: {conn.error}, with nothing on stderr")
        said = said or words.splitlines()[-1] if words else said
    if problems:
        return Check(name, False, f"{wire}; " + "; ".join(problems[:3]))
    return Check(name, wire_ok, f"{wire}; then the client stopped, saying {said!r}")
