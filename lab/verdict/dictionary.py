"""The dictionary server's claims: its non-ASCII replies travel as UTF-8 bytes, and each
request line gets a reply line of its own however the lines were cut into segments."""

from __future__ import annotations

from lab.evidence.analysis.tcp import CLIENT, SERVER
from lab.evidence.folder import Evidence
from lab.i18n import msg
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
        stream = c.stream(SERVER)
        missing = [w for w in wanted if w.encode("utf-8") + b"\n" not in stream]
        if missing:
            said = msg(
                "detail.utf8.missing",
                ends=f"{c.client} -> {c.server}",
                stream=repr(stream[:80]),
                missing=", ".join(f"{w} ({_hex(w)})" for w in missing),
            )
            return Check.said(name, False, said)
    shown = ", ".join(f"{w} = {_hex(w)}" for w in wanted)
    return Check.said(name, True, msg("detail.utf8.ok", n=len(conns), shown=shown))


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
            said = msg(
                "detail.lines.differ",
                ends=f"{c.client} -> {c.server}",
                lines_in=lines_in,
                asked=repr(b"".join(asked)[:60]),
                n_asked=len(asked),
                lines_out=lines_out,
                answered=repr(b"".join(answered)[:60]),
                n_answered=len(answered),
            )
            return Check.said(name, False, said)
    return Check.said(name, True, msg("detail.lines.ok", n=len(conns)))
