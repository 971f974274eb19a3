"""The TCP connections of a scenario: a one-line summary each, opening on its facts,
window chart, sequence diagram and packet table; and the table of UDP flows.

To stay usable with hundreds of connections, each connection is a closed ``<details>``
(only the first of each scenario is open) and diagrams are drawn only for the first
:data:`DIAGRAMS_PER_SCENARIO` connections of a scenario (fewer when they pass
:data:`DIAGRAM_BYTES`); the rest keep their table row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lab.report.figures import window_chart
from lab.report.markup import Call, badge, end, esc
from lab.report.probes import align_calls
from lab.report.sequence import sequence_svg

DIAGRAMS_PER_SCENARIO = 100
# And only while a scenario's connections take less than this much of the page: a
# connection with many highlighted segments draws a long diagram and packet table.
DIAGRAM_BYTES = 1_500_000


def connections_html(
    conns: Sequence[Mapping[str, Any]],
    probes: Mapping[str, Sequence[Call]] | None = None,
) -> str:
    head = (
        "<div class=connhead><span>id</span><span>client → server</span><span>handshake</span>"
        "<span>close</span><span>first FIN</span><span>TIME_WAIT</span><span>segments</span></div>"
    )
    items, drawn, used = [], 0, 0
    for i, c in enumerate(conns):
        diagram = drawn < DIAGRAMS_PER_SCENARIO and used < DIAGRAM_BYTES
        item = _connection(
            c, open_=(i == 0), diagram=diagram, calls=(probes or {}).get(_local(c), ())
        )
        drawn, used = drawn + diagram, used + len(item)
        items.append(item)
    more = ""
    if drawn < len(conns):
        more = (
            f"<p class=note>Diagrams are drawn for the first {drawn} "
            f"connections; every connection's numbers are in summary.json.</p>"
        )
    return (
        "<input class=filter hidden type=search "
        'placeholder="filter connections (host, port, kind)">'
        f"<div class=conns>{head}{''.join(items)}</div>{more}"
    )


def _local(conn: Mapping[str, Any]) -> str:
    client = conn.get("client") or {}
    return f"{client.get('ip')}:{client.get('port')}"


def _connection(
    conn: Mapping[str, Any],
    open_: bool,
    diagram: bool,
    calls: Sequence[Call] = (),
) -> str:
    hs = conn.get("handshake") or {}
    close = conn.get("close") or {}
    ok = bool(hs.get("ok"))
    summary_row = (
        f"<summary class=connrow><span class=id>{esc(conn.get('id'))}</span>"
        f"<span>{esc(end(conn.get('client') or {}))} → {esc(end(conn.get('server') or {}))}"
        f"</span><span>{badge(ok, 'ok', 'bad')}</span><span>{esc(close.get('kind'))}</span>"
        f"<span>{esc(close.get('first_fin_by') or '-')}</span>"
        f"<span>{esc(', '.join(str(x) for x in close.get('time_wait_by') or []) or '-')}</span>"
        f"<span>{esc(conn.get('segment_count'))}</span></summary>"
    )
    inner = _facts(conn)
    if diagram:
        aligned = align_calls(conn, calls)
        inner += window_chart(conn) + sequence_svg(conn, aligned) + _packet_table(conn)
    return f"<details class=conn{' open' if open_ else ''}>{summary_row}{inner}</details>"


def _facts(conn: Mapping[str, Any]) -> str:
    items = _handshake_facts(conn) + _close_facts(conn) + _notable_facts(conn)
    return "<ul class=facts>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _handshake_facts(conn: Mapping[str, Any]) -> list[str]:
    hs = conn.get("handshake") or {}
    client, server = conn.get("client") or {}, conn.get("server") or {}
    mss, ws, win = hs.get("mss") or {}, hs.get("wscale") or {}, hs.get("windows") or {}
    return [
        f"handshake: {esc(hs.get('reason'))}",
        (
            f"ISN client ({esc(client.get('ip'))}:{esc(client.get('port'))}) = "
            f"<b>{esc(hs.get('client_isn'))}</b>, server ({esc(server.get('ip'))}:"
            f"{esc(server.get('port'))}) = <b>{esc(hs.get('server_isn'))}</b>; "
            "seq/ack in the diagram are relative to these"
        ),
        (
            f"MSS {esc(mss.get('client'))} / {esc(mss.get('server'))}, window scale "
            f"{esc(ws.get('client'))} / {esc(ws.get('server'))}, SYN windows "
            f"{esc(win.get('client'))} / {esc(win.get('server'))} (client / server)"
        ),
    ]


def _close_facts(conn: Mapping[str, Any]) -> list[str]:
    close = conn.get("close") or {}
    return [
        (
            f"close: {esc(close.get('kind'))}; first FIN by {esc(close.get('first_fin_by'))}; "
            f"TIME_WAIT on {esc(', '.join(str(x) for x in close.get('time_wait_by') or []))}"
            + (f"; reset by {esc(close.get('reset_by'))}" if close.get("reset_by") else "")
        ),
        (
            f"evidence {esc(conn.get('evidence'))}; seen in "
            f"{esc(', '.join(conn.get('seen_in') or []))}"
        ),
    ]


def _notable_facts(conn: Mapping[str, Any]) -> list[str]:
    """Only what a connection has: a path, retransmissions, a closed window."""
    items = []
    path = conn.get("path")
    if path:
        items.append(
            f"path: <b>{esc(path.get('summary'))}</b> "
            f"({esc(' vs '.join(path.get('captures') or []))})"
        )
    if conn.get("retransmissions"):
        items.append(f"{esc(conn.get('retransmissions'))} retransmissions")
    if conn.get("syn_retransmissions"):
        items.append(
            f"<b>SYN sent {int(conn['syn_retransmissions']) + 1} times</b> (same ISN): "
            "retransmitted until the server answered"
        )
    if conn.get("zero_windows") or conn.get("zero_window_probes"):
        items.append(
            f"window: <b>{esc(conn.get('zero_windows'))}</b> zero-window segments, "
            f"<b>{esc(conn.get('zero_window_probes'))}</b> zero-window probes, "
            f"<b>{esc(conn.get('window_updates'))}</b> window updates"
        )
    return items


def _packet_table(conn: Mapping[str, Any]) -> str:
    rows = []
    for s in conn.get("segments") or []:
        direction = "client → server" if s.get("from") == "client" else "server → client"
        opts = s.get("options") or {}
        opt_text = " ".join(
            f"{k}={','.join(str(x) for x in v) if isinstance(v, list) else v}"
            for k, v in opts.items()
        )
        rows.append(
            f"<tr><td>{esc(s.get('index'))}</td><td>{float(s.get('t') or 0):.6f}</td>"
            f"<td>{direction}</td><td>{esc(' '.join(s.get('flags') or []))}</td>"
            f"<td>{esc(s.get('seq'))}</td><td>{esc(s.get('ack'))}</td><td>{esc(s.get('len'))}</td>"
            f"<td>{esc(s.get('win'))}</td><td>{esc(s.get('win_bytes'))}</td>"
            f"<td>{esc(opt_text)}</td><td>{esc(s.get('ttl'))}</td>"
            f"<td class=payload>{esc(s.get('payload'))}</td></tr>"
        )
    omitted = int(conn.get("segments_omitted") or 0)
    note = f"<p class=note>{omitted} segments in the middle are left out.</p>" if omitted else ""
    return (
        f"<details class=packets><summary>packet table ({len(rows)} segments)</summary>"
        "<table class=pkts><thead><tr><th>#</th><th>time (s)</th><th>direction</th><th>flags</th>"
        "<th>seq</th><th>ack</th><th>len</th><th>win</th><th>win bytes</th><th>options</th>"
        f"<th>TTL</th><th>payload</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"{note}</details>"
    )


# -- UDP --------------------------------------------------------------------------------


def udp_table(flows: Iterable[Mapping[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{esc(f.get('id'))}</td><td>{esc(f.get('scenario'))}</td>"
        f"<td>{esc(end(f.get('client') or {}))} → {esc(end(f.get('server') or {}))}</td>"
        f"<td>{esc((f.get('datagrams') or {}).get('client'))} / "
        f"{esc((f.get('datagrams') or {}).get('server'))}</td>"
        f"<td>{esc(', '.join(str(x) for x in f.get('sizes') or []))}</td>"
        f"<td>{esc(', '.join(f.get('seen_in') or []))}</td></tr>"
        for f in flows
    )
    return (
        "<p class=note>UDP has no handshake and no close: each flow is just datagrams.</p>"
        "<table class=pkts><thead><tr><th>id</th><th>scenario</th><th>client → server</th>"
        "<th>datagrams c/s</th><th>sizes</th><th>seen in</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
