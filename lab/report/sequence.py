"""A connection drawn like the course's timing figures: the client's and the server's
lines, one arrow per segment in the course's notation (flags, relative seq/ack, window,
SYN options), a probe program's own calls on the client's line.

Window events, retransmissions, resets and data after a FIN are highlighted and tagged;
a run of segments not drawn is one "… N segments …" line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from lab.evidence.records import SegmentRecord, TcpRecord
from lab.i18n import t as msg
from lab.i18n import t_or
from lab.report.markup import Call, esc

# Arrows for data and pure ACK segments between the handshake and the close.
DATA_ARROWS = 20

_SEQ_W, _LEFT, _RIGHT, _STEP = 960, 190, 690, 36


def segment_label(seg: SegmentRecord, full: bool = False) -> str:
    """The arrow's text, in the course's notation: flags, relative seq (with ``:end(len)``
    when it carries data), ack, window in bytes, and the SYN options. A pure ACK is
    written "ACK <ack>" unless ``full`` (a highlighted one: a probe's seq matters)."""
    flags = seg.flags
    parts = [", ".join(flags) or "(no flags)"]
    length, seq, ack = seg.len, seg.seq, seg.ack
    pure_ack = flags == ["ACK"] and length == 0 and not full
    if pure_ack:
        parts[0] = f"ACK {ack}"
    elif length:
        parts.append(f"seq={seq}:{seq + length}({length})")
    else:
        parts.append(f"seq={seq}")
    if ack is not None and not pure_ack:
        parts.append(f"ack={ack}")
    parts.append(f"win={seg.win_bytes if seg.win_bytes is not None else seg.win}")
    opts = seg.options
    extra = []
    if opts.mss is not None:
        extra.append(f"mss {opts.mss}")
    if opts.wscale is not None:
        extra.append(f"wscale {opts.wscale}")
    if extra:
        parts.append("<" + ", ".join(extra) + ">")
    if seg.retransmission:
        parts.append("[retransmission]")
    return " ".join(parts)


def _phases(
    segments: Sequence[SegmentRecord],
) -> tuple[list[SegmentRecord], list[SegmentRecord], list[SegmentRecord]]:
    """Handshake segments (up to the client's first ACK), the middle, and the close (from
    the first FIN or RST on)."""
    hs_end = 0
    for i, s in enumerate(segments[:4]):
        if "SYN" in s.flags:
            hs_end = i + 1
        elif hs_end and s.sender == "client":
            hs_end = i + 1
            break
    rest = segments[hs_end:]
    cut = next((i for i, s in enumerate(rest) if {"FIN", "RST"} & set(s.flags)), len(rest))
    return list(segments[:hs_end]), list(rest[:cut]), list(rest[cut:])


# What a highlighted segment is, by the kind of its window event (its text: seq.tag.KIND).
_EVENT_TAGS = {"zero-window": "zw", "zero-window-probe": "probe", "window-update": "update"}
# Segments drawn from the middle of a connection that has highlighted ones: the first few
# of its data phase, then each highlighted one with the segment before it.
DATA_HEAD = 6
KEY_ARROWS = 40


def _tags(conn: TcpRecord) -> dict[int, list[tuple[str, str]]]:
    """Segment index -> ``(class, text)`` of what makes it worth a highlight: a window
    event, a retransmission, a RST (answering a SYN: the port is closed) and the first
    data a side sends after its peer's FIN."""
    tags: dict[int, list[tuple[str, str]]] = {}
    for e in conn.window_events:
        cls = _EVENT_TAGS.get(e.kind)
        if cls is not None:
            tags.setdefault(e.index, []).append((cls, msg(f"seq.tag.{e.kind}")))
    for index, tag in _segment_tags(conn.segments):
        tags.setdefault(index, []).append(tag)
    return tags


def _segment_tags(segments: Sequence[SegmentRecord]) -> Iterator[tuple[int, tuple[str, str]]]:
    """The tags of the segments themselves, in order; whether a RST or data comes after a
    FIN depends on the segments before it."""
    synack = any({"SYN", "ACK"} <= set(s.flags) for s in segments)
    fin_from: set[str] = set()
    after_fin: set[str] = set()
    for s in segments:
        flags, side = set(s.flags), s.sender
        if s.retransmission:
            yield s.index, ("rt", msg("seq.tag.syn_rt" if flags == {"SYN"} else "seq.tag.rt"))
        if "RST" in flags:
            late = side in fin_from and bool(after_fin - {side})
            yield s.index, ("rst", _rst_text(synack, late))
        peer = "server" if side == "client" else "client"
        if s.len and peer in fin_from and side not in after_fin:
            after_fin.add(side)
            yield s.index, ("late", msg("seq.tag.late", peer=t_or(f"side.{peer}", peer)))
        if "FIN" in flags:
            fin_from.add(side)


def _rst_text(synack: bool, answers_late_data: bool) -> str:
    if not synack:
        return msg("seq.tag.rst_syn")
    if answers_late_data:
        return msg("seq.tag.rst_late")
    return msg("seq.tag.reset")


def _shown(conn: TcpRecord, tags: Mapping[int, object]) -> list[tuple[int, SegmentRecord]]:
    """The ``(pos, segment)`` pairs to draw: the handshake, the start of the data phase
    (all of it up to :data:`DATA_ARROWS` when nothing is highlighted), each highlighted
    segment with the one before it, and the close."""
    segments = conn.segments
    # ``pos``: a segment's place among all the connection's segments, kept or not.
    pairs = [(s.pos, s) for s in segments]
    opening, middle, _ = _phases(segments)
    a, b = len(opening), len(opening) + len(middle)
    keys = [i for i in range(a, b) if segments[i].index in tags]
    if not keys:
        return pairs[: a + DATA_ARROWS] + pairs[b:] if b - a > DATA_ARROWS else pairs
    chosen = set(range(a, min(b, a + DATA_HEAD)))
    for i in keys[:KEY_ARROWS]:
        chosen |= {i - 1, i} if i > a else {i}
    return pairs[:a] + [pairs[i] for i in sorted(chosen)] + pairs[b:]


# A line of the diagram: a segment's arrow, a probe program's call, or a number of
# segments not drawn.
_Line = SegmentRecord | Call | int


def sequence_svg(conn: TcpRecord, calls: Sequence[Call] = ()) -> str:
    """The connection drawn like the course's timing figures. Highlighted segments (see
    :func:`_tags`) get a band and a tag; a run of segments not drawn becomes one "… N
    segments …" line; ``calls`` (time, text, failed) are the client program's own calls,
    drawn on the client's line in time order."""
    tags = _tags(conn)
    lines = _lines(conn, tags, calls)
    height = 70 + _STEP * len(lines) + 20
    out = [
        f"<svg class=seq width={_SEQ_W} height={height} "
        f'viewBox="0 0 {_SEQ_W} {height}" role=img aria-label="{esc(msg("seq.aria"))}">'
        '<defs><marker id=ah viewBox="0 0 10 10" refX=10 refY=5 markerWidth=7 markerHeight=7 '
        'orient=auto-start-reverse><path d="M0,0 L10,5 L0,10 z" class=head /></marker></defs>'
    ]
    out += _lifelines(conn, height)
    out += [_draw(line, 70 + _STEP * k, tags) for k, line in enumerate(lines)]
    out.append("</svg>")
    return "<div class=scroll>" + "".join(out) + "</div>"


def _lines(conn: TcpRecord, tags: Mapping[int, object], calls: Sequence[Call]) -> list[_Line]:
    """The segments drawn, in order, with the calls made before each one and a gap
    wherever segments are left out (at the end too)."""
    lines: list[_Line] = []
    pending = sorted(calls)
    last_pos = -1
    for pos, seg in _shown(conn, tags):
        while pending and pending[0][0] < seg.t:
            lines.append(pending.pop(0))
        if pos > last_pos + 1:
            lines.append(pos - last_pos - 1)
        lines.append(seg)
        last_pos = pos
    total = conn.segment_count or last_pos + 1
    if total > last_pos + 1:
        lines.append(total - last_pos - 1)
    return lines + pending


def _lifelines(conn: TcpRecord, height: int) -> list[str]:
    return [
        f"<rect class=life x={x - 85} y=6 width=170 height=40 rx=5 />"
        f"<text class=lifename x={x} y=23>"
        f"{esc(msg('seq.role', node=side.node or role, role=t_or(f'side.{role}', role)))}</text>"
        f"<text class=lifeaddr x={x} y=39>{esc(side.ip)}:{esc(side.port)}</text>"
        f"<line class=lifeline x1={x} y1=46 x2={x} y2={height - 6} />"
        for x, side, role in ((_LEFT, conn.client, "client"), (_RIGHT, conn.server, "server"))
    ]


def _draw(line: _Line, y: int, tags: Mapping[int, Sequence[tuple[str, str]]]) -> str:
    if isinstance(line, int):
        return (
            f"<text class=more x={(_LEFT + _RIGHT) // 2} y={y + 12}>"
            f"{esc(msg('seq.more.one' if line == 1 else 'seq.more.many', n=line))}"
            f"<title>{esc(msg('seq.more_title'))}</title></text>"
        )
    if isinstance(line, tuple):
        return _call_row(line, y)
    return _arrow(line, y, tags.get(line.index, []))


def _arrow(seg: SegmentRecord, y: int, tags: Sequence[tuple[str, str]]) -> str:
    x1, x2 = (_LEFT, _RIGHT) if seg.sender == "client" else (_RIGHT, _LEFT)
    flags = set(seg.flags)
    cls = next((f.lower() for f in ("SYN", "FIN", "RST") if f in flags), "")
    cls = cls or ("data" if seg.len else "ack")
    band = tag_text = ""
    if tags:
        cls += " " + " ".join(f"hl-{c}" for c, _ in tags)
        band = f"<rect class=band x=2 y={y - 16} width={_SEQ_W - 4} height={_STEP - 2} rx=3 />"
        tag_text = (
            f"<text class=tag x={_RIGHT + 14} y={y + 12}>"
            f"{esc(' · '.join(text for _, text in tags))}</text>"
        )
    return (
        f'<g class="arrow {cls}">{band}<line x1={x1} y1={y + 4} x2={x2} y2={y + 18} '
        f'marker-end="url(#ah)" /><text class=label x={(_LEFT + _RIGHT) // 2} y={y - 2}>'
        f"{esc(segment_label(seg, full=bool(tags)))}</text><text class=time x=8 y={y + 12}>"
        f"+{seg.t:.6f}s</text>{tag_text}"
        f"<text class=idx x={_SEQ_W - 8} y={y + 12}>#{esc(seg.index)}</text></g>"
    )


def _call_row(call: Call, y: int) -> str:
    t, text, failed = call
    width = 12 + 7 * len(text)
    return (
        f'<g class="call{" err" if failed else ""}"><rect x={_LEFT - 6} y={y - 2} width=12 '
        f"height=22 rx=2 /><rect class=callbox x={_LEFT + 12} y={y} width={width} height=18 "
        f"rx=9 /><text class=calltext x={_LEFT + 18} y={y + 13}>{esc(text)}</text>"
        f"<text class=time x=8 y={y + 12}>≈+{t:.3f}s</text></g>"
    )
