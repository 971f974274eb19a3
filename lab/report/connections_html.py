"""The TCP connections of a scenario: a one-line summary each, opening on its facts,
window chart, sequence diagram and packet table; and the table of UDP flows.

To stay usable with hundreds of connections, each connection is a closed ``<details>``
(only the first of each scenario is open) and diagrams are drawn only for the first
:data:`DIAGRAMS_PER_SCENARIO` connections of a scenario (fewer when they pass
:data:`DIAGRAM_BYTES`); the rest keep their table row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields

from lab.evidence.records import SegmentOptions, SegmentRecord, TcpRecord, UdpRecord
from lab.report.figures import window_chart
from lab.report.markup import Call, badge, end, esc
from lab.report.probes import align_calls
from lab.report.sequence import sequence_svg
from lab.report.trace_svg import trace_chart

DIAGRAMS_PER_SCENARIO = 100
# And only while a scenario's connections take less than this much of the page: a
# connection with many highlighted segments draws a long diagram and packet table.
DIAGRAM_BYTES = 1_500_000


def connections_html(
    conns: Sequence[TcpRecord],
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


def _local(conn: TcpRecord) -> str:
    return f"{conn.client.ip}:{conn.client.port}"


def _connection(
    conn: TcpRecord,
    open_: bool,
    diagram: bool,
    calls: Sequence[Call] = (),
) -> str:
    close = conn.close
    summary_row = (
        f"<summary class=connrow><span class=id>{esc(conn.id)}</span>"
        f"<span>{esc(end(conn.client))} → {esc(end(conn.server))}"
        f"</span><span>{badge(conn.handshake.ok, 'ok', 'bad')}</span>"
        f"<span>{esc(close.kind)}</span><span>{esc(close.first_fin_by or '-')}</span>"
        f"<span>{esc(', '.join(close.time_wait_by) or '-')}</span>"
        f"<span>{esc(conn.segment_count)}</span></summary>"
    )
    inner = _facts(conn)
    if diagram:
        aligned = align_calls(conn, calls)
        inner += window_chart(conn) + trace_chart(conn) + sequence_svg(conn, aligned)
        inner += _packet_table(conn)
    return f"<details class=conn{' open' if open_ else ''}>{summary_row}{inner}</details>"


def _facts(conn: TcpRecord) -> str:
    items = _handshake_facts(conn) + _close_facts(conn) + _notable_facts(conn)
    return "<ul class=facts>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _handshake_facts(conn: TcpRecord) -> list[str]:
    hs, client, server = conn.handshake, conn.client, conn.server
    mss, ws, win = hs.mss, hs.wscale, hs.windows
    return [
        f"handshake: {esc(hs.reason)}",
        (
            f"ISN client ({esc(client.ip)}:{esc(client.port)}) = "
            f"<b>{esc(hs.client_isn)}</b>, server ({esc(server.ip)}:"
            f"{esc(server.port)}) = <b>{esc(hs.server_isn)}</b>; "
            "seq/ack in the diagram are relative to these"
        ),
        (
            f"MSS {esc(mss.client)} / {esc(mss.server)}, window scale "
            f"{esc(ws.client)} / {esc(ws.server)}, SYN windows "
            f"{esc(win.client)} / {esc(win.server)} (client / server)"
        ),
    ]


def _close_facts(conn: TcpRecord) -> list[str]:
    close = conn.close
    return [
        (
            f"close: {esc(close.kind)}; first FIN by {esc(close.first_fin_by)}; "
            f"TIME_WAIT on {esc(', '.join(close.time_wait_by))}"
            + (f"; reset by {esc(close.reset_by)}" if close.reset_by else "")
        ),
        f"evidence {esc(conn.evidence)}; seen in {esc(', '.join(conn.seen_in))}",
    ]


def _notable_facts(conn: TcpRecord) -> list[str]:
    """Only what a connection has: a path, retransmissions, a closed window."""
    items = []
    if conn.path is not None:
        items.append(
            f"path: <b>{esc(conn.path.summary)}</b> ({esc(' vs '.join(conn.path.captures))})"
        )
    if conn.retransmissions:
        kinds = [
            f"{n} {kind}"
            for n, kind in ((conn.fast_retransmissions, "fast"),
                            (conn.spurious_retransmissions, "spurious"))
            if n
        ]  # fmt: skip
        of = f" ({esc(', '.join(kinds))})" if kinds else ""
        items.append(
            f"{esc(conn.retransmissions)} retransmissions{of} of {esc(conn.originals)} "
            "segments sent once"
        )
    if conn.syn_retransmissions:
        items.append(
            f"<b>SYN sent {conn.syn_retransmissions + 1} times</b> (same ISN): "
            "retransmitted until the server answered"
        )
    if conn.zero_windows or conn.zero_window_probes:
        items.append(
            f"window: <b>{esc(conn.zero_windows)}</b> zero-window segments, "
            f"<b>{esc(conn.zero_window_probes)}</b> zero-window probes, "
            f"<b>{esc(conn.window_updates)}</b> window updates"
        )
    return items


def _options_text(opts: SegmentOptions) -> str:
    """The options a segment carried, in the order of summary.json's ``options``."""
    present = [(f.name, getattr(opts, f.name)) for f in fields(opts)]
    return " ".join(
        f"{k}={','.join(str(x) for x in v) if isinstance(v, list) else v}"
        for k, v in present
        if v is not None
    )


def _packet_row(s: SegmentRecord) -> str:
    direction = "client → server" if s.sender == "client" else "server → client"
    return (
        f"<tr><td>{esc(s.index)}</td><td>{s.t:.6f}</td>"
        f"<td>{direction}</td><td>{esc(' '.join(s.flags))}</td>"
        f"<td>{esc(s.seq)}</td><td>{esc(s.ack)}</td><td>{esc(s.len)}</td>"
        f"<td>{esc(s.win)}</td><td>{esc(s.win_bytes)}</td>"
        f"<td>{esc(_options_text(s.options))}</td><td>{esc(s.ttl)}</td>"
        f"<td class=payload>{esc(s.payload)}</td></tr>"
    )


def _packet_table(conn: TcpRecord) -> str:
    rows = [_packet_row(s) for s in conn.segments]
    omitted = conn.segments_omitted
    note = f"<p class=note>{omitted} segments in the middle are left out.</p>" if omitted else ""
    return (
        f"<details class=packets><summary>packet table ({len(rows)} segments)</summary>"
        "<table class=pkts><thead><tr><th>#</th><th>time (s)</th><th>direction</th><th>flags</th>"
        "<th>seq</th><th>ack</th><th>len</th><th>win</th><th>win bytes</th><th>options</th>"
        f"<th>TTL</th><th>payload</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"{note}</details>"
    )


# -- UDP --------------------------------------------------------------------------------


def udp_table(flows: Iterable[UdpRecord]) -> str:
    rows = "".join(
        f"<tr><td>{esc(f.id)}</td><td>{esc(f.scenario)}</td>"
        f"<td>{esc(end(f.client))} → {esc(end(f.server))}</td>"
        f"<td>{esc(f.datagrams.client)} / {esc(f.datagrams.server)}</td>"
        f"<td>{esc(', '.join(str(x) for x in f.sizes))}</td>"
        f"<td>{esc(', '.join(f.seen_in))}</td></tr>"
        for f in flows
    )
    return (
        "<p class=note>UDP has no handshake and no close: each flow is just datagrams.</p>"
        "<table class=pkts><thead><tr><th>id</th><th>scenario</th><th>client → server</th>"
        "<th>datagrams c/s</th><th>sizes</th><th>seen in</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
