"""The dictionary server's claims: its non-ASCII replies travel as UTF-8 bytes, and each
request line gets a reply line of its own however the lines were cut into segments."""

from __future__ import annotations

from lab.evidence.analysis.tcp import CLIENT, SERVER
from lab.evidence.folder import Evidence
from lab.spec.model import Scenario, Topology
from lab.verdict.check import Check
from lab.verdict.scope import none_seen, tcp


def _hex(text: str) -> str:
    return text.encode("utf-8").hex(" ")


def utf8_on_wire(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Every non-ASCII expected reply travels server -> client as its UTF-8 bytes."""
    name = "UTF-8 on the wire"
    wanted = [s for s in sc.expect if not s.isascii()]
    if not wanted:
        return Check(name, False, "no non-ASCII reply in 'expect' to look for")
    scope, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen(name, scope)
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


def one_reply_per_line(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """As many reply lines from the server as request lines from the client, on every
    connection: a server that takes each ``read()`` for one request answers two lines that
    arrived together, in one ``read()``, once."""
    name = "one reply per line"
    scope, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen(name, scope)
    for c in conns:
        asked = [s.payload for s in c.data_segments if s.sender == CLIENT]
        answered = [s.payload for s in c.data_segments if s.sender == SERVER]
        lines_in, lines_out = (
            sum(p.count(b"\n") for p in asked),
            sum(p.count(b"\n") for p in answered),
        )
        if lines_in != lines_out:
            return Check(
                name,
                False,
                f"{c.client} -> {c.server}: the client sent {lines_in} lines "
                f"({b''.join(asked)[:60]!r}, {len(asked)} segments), the server answered "
                f"{lines_out} ({b''.join(answered)[:60]!r}, {len(answered)} segments)",
            )
    return Check(name, True, f"{len(conns)} connections: one reply line per request line")
