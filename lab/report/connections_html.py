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

from lab.evidence.phrases import phrase
from lab.evidence.records import SegmentOptions, SegmentRecord, TcpRecord, UdpRecord
from lab.i18n import t, t_or
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
    columns = ("id", "ends", "handshake", "close", "first_fin", "time_wait", "segments")
    spans = "".join(f"<span>{esc(t(f'conn.col.{c}'))}</span>" for c in columns)
    head = f"<div class=connhead>{spans}</div>"
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
        more = f"<p class=note>{esc(t('conn.diagrams_note', drawn=drawn))}</p>"
    return (
        "<input class=filter hidden type=search "
        f'placeholder="{esc(t("conn.filter"))}">'
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
        f"</span><span>{badge(conn.handshake.ok, t('badge.ok'), t('badge.bad'))}</span>"
        f"<span>{esc(_kind(close.kind))}</span><span>{esc(_side(close.first_fin_by) or '-')}</span>"
        f"<span>{esc(', '.join(map(_side, close.time_wait_by)) or '-')}</span>"
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


def _phrase(text: str) -> str:
    """The analysis's phrase (English in summary.json) in the current language."""
    said = phrase(text)
    return said if isinstance(said, str) else said.text()


def _handshake_facts(conn: TcpRecord) -> list[str]:
    hs, client, server = conn.handshake, conn.client, conn.server
    mss, ws, win = hs.mss, hs.wscale, hs.windows
    return [
        t("conn.fact.handshake", reason=esc(_phrase(hs.reason))),
        t(
            "conn.fact.isn",
            client=esc(f"{client.ip}:{client.port}"),
            client_isn=esc(hs.client_isn),
            server=esc(f"{server.ip}:{server.port}"),
            server_isn=esc(hs.server_isn),
        ),
        t(
            "conn.fact.options",
            mss_c=esc(mss.client),
            mss_s=esc(mss.server),
            ws_c=esc(ws.client),
            ws_s=esc(ws.server),
            win_c=esc(win.client),
            win_s=esc(win.server),
        ),
    ]


def _close_facts(conn: TcpRecord) -> list[str]:
    close = conn.close
    reset = t("conn.fact.reset", who=esc(_side(close.reset_by))) if close.reset_by else ""
    return [
        t(
            "conn.fact.close",
            kind=esc(_kind(close.kind)),
            first=esc(_side(close.first_fin_by)),
            tw=esc(", ".join(map(_side, close.time_wait_by))),
        )
        + reset,
        t("conn.fact.evidence", evidence=esc(conn.evidence), seen=esc(", ".join(conn.seen_in))),
    ]


def _kind(kind: str) -> str:
    """A close's kind (summary.json's id) in the page's language."""
    return t_or(f"close.kind.{kind}", kind)


def _side(side: str | None) -> str:
    """``client`` or ``server`` (summary.json's ids) in the page's language."""
    return "" if side is None else t_or(f"side.{side}", side)


def _notable_facts(conn: TcpRecord) -> list[str]:
    """Only what a connection has: a path, retransmissions, a closed window."""
    items = []
    if conn.path is not None:
        captures = esc(t("conn.fact.vs").join(conn.path.captures))
        items.append(t("conn.fact.path", path=esc(conn.path.summary), captures=captures))
    if conn.retransmissions:
        kinds = [
            t(f"conn.fact.{kind}", n=n)
            for n, kind in ((conn.fast_retransmissions, "fast"),
                            (conn.spurious_retransmissions, "spurious"))
            if n
        ]  # fmt: skip
        of = f" ({esc(', '.join(kinds))})" if kinds else ""
        n, originals = esc(conn.retransmissions), esc(conn.originals)
        items.append(t("conn.fact.retrans", n=n, of=of, originals=originals))
    if conn.syn_retransmissions:
        items.append(t("conn.fact.syn_retrans", times=conn.syn_retransmissions + 1))
    if conn.zero_windows or conn.zero_window_probes:
        items.append(
            t(
                "conn.fact.window",
                zero=esc(conn.zero_windows),
                probes=esc(conn.zero_window_probes),
                updates=esc(conn.window_updates),
            )
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
    direction = t("conn.dir.c2s" if s.sender == "client" else "conn.dir.s2c")
    return (
        f"<tr><td>{esc(s.index)}</td><td>{s.t:.6f}</td>"
        f"<td>{esc(direction)}</td><td>{esc(' '.join(s.flags))}</td>"
        f"<td>{esc(s.seq)}</td><td>{esc(s.ack)}</td><td>{esc(s.len)}</td>"
        f"<td>{esc(s.win)}</td><td>{esc(s.win_bytes)}</td>"
        f"<td>{esc(_options_text(s.options))}</td><td>{esc(s.ttl)}</td>"
        f"<td class=payload>{esc(s.payload)}</td></tr>"
    )


def _packet_table(conn: TcpRecord) -> str:
    rows = [_packet_row(s) for s in conn.segments]
    omitted = conn.segments_omitted
    note = f"<p class=note>{esc(t('conn.omitted', n=omitted))}</p>" if omitted else ""
    heads = "".join(f"<th>{esc(t(f'conn.col.{c}'))}</th>" for c in PACKET_COLUMNS)
    return (
        f"<details class=packets><summary>{esc(t('conn.packets', n=len(rows)))}</summary>"
        f"<table class=pkts><thead><tr>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"{note}</details>"
    )


PACKET_COLUMNS = (
    "index", "time", "direction", "flags", "seq", "ack", "len", "win", "win_bytes", "options",
    "ttl", "payload",
)  # fmt: skip


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
    columns = ("id", "scenario", "ends", "datagrams", "sizes", "seen_in")
    heads = "".join(f"<th>{esc(t(f'udp.col.{c}'))}</th>" for c in columns)
    return (
        f"<p class=note>{esc(t('udp.note'))}</p>"
        f"<table class=pkts><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>"
    )
