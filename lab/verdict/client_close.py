"""A client and the server's early close: after the server's FIN the client's next write
meets the close (the server answers it with RST), and its ``read`` returns 0; a client that
checks what ``read`` returned stops there and says so (``str_cli``: "server terminated
prematurely"). One that does not goes on as if nothing happened: it prints nothing, says
nothing, and waits for a reply that cannot come until it is killed (or writes on into
EPIPE)."""

from __future__ import annotations

from lab.evidence.analysis.tcp import CLIENT, SERVER, Segment, TcpConnection
from lab.evidence.folder import Evidence
from lab.i18n import Msg, join, msg
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


def _wire(conns: list[TcpConnection]) -> tuple[bool, Msg]:
    """The server closed first on every connection; what the client sent after that."""
    for c in conns:
        fin, data = _after_server_fin(c)
        client_fin = next((s for s in c.segments if s.sender == CLIENT and s.has("FIN")), None)
        if fin is None or (client_fin is not None and client_fin.time < fin.time):
            return False, msg("detail.early.not_first", client=c.client)
    fin, data = _after_server_fin(conns[0])
    sent = b"".join(s.payload for s in data)
    reset = any(s.sender == SERVER and s.has("RST") for s in conns[0].segments)
    said = msg(
        "detail.early.wire", index=fin.index if fin else "?", n=len(data), sent=repr(sent[:40])
    )
    return True, msg("detail.early.rst", said=said) if reset else said


def close_noticed(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The server closed first, and every client then stopped by itself, saying why: it
    exited (not killed after the lab's reply timeout) with a message on its stderr."""
    name = "early close noticed"
    scope, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen(name, scope)
    wire_ok, wire = _wire(conns)
    problems: list[Msg] = []
    said = ""
    for node, client in sorted(scenario_clients(ev, sc).items()):
        words = client.stderr.strip()
        for conn in line_connections(client):
            if conn.error is None or not conn.error.startswith("exited"):
                why = conn.error or msg("said.it got every reply")
                problems.append(msg("detail.early.silent", where=f"{node} #{conn.index}", why=why))
            elif not words:
                where = f"{node} #{conn.index}"
                problems.append(msg("detail.early.no_stderr", where=where, why=conn.error))
        said = said or words.splitlines()[-1] if words else said
    if problems:
        return Check.said(name, False, msg("detail.then", a=wire, b=join(problems[:3])))
    return Check.said(name, wire_ok, msg("detail.early.stopped", wire=wire, said=repr(said)))
