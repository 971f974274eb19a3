"""A connection drawn like the course's timing figures: the client's and the server's
lines, one arrow per segment in the course's notation (flags, relative seq/ack, window,
SYN options), a probe program's own calls on the client's line.

Window events, retransmissions, resets and data after a FIN are highlighted and tagged;
a run of segments not drawn is one "… N segments …" line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lab.evidence.connections import SEGMENTS_TAIL
from lab.report.markup import Call, esc

# Arrows for data and pure ACK segments between the handshake and the close.
DATA_ARROWS = 20

_SEQ_W, _LEFT, _RIGHT, _STEP = 960, 190, 690, 36


def segment_label(seg: Mapping[str, Any], full: bool = False) -> str:
    """The arrow's text, in the course's notation: flags, relative seq (with ``:end(len)``
    when it carries data), ack, window in bytes, and the SYN options. A pure ACK is
    written "ACK <ack>" unless ``full`` (a highlighted one: a probe's seq matters)."""
    flags = list(seg.get("flags") or [])
    parts = [", ".join(flags) or "(no flags)"]
    length = int(seg.get("len") or 0)
    seq, ack = seg.get("seq"), seg.get("ack")
    pure_ack = flags == ["ACK"] and length == 0 and not full
    if pure_ack:
        parts[0] = f"ACK {ack}"
    elif length:
        parts.append(f"seq={seq}:{int(seq or 0) + length}({length})")
    else:
        parts.append(f"seq={seq}")
    if ack is not None and not pure_ack:
        parts.append(f"ack={ack}")
    win = seg.get("win_bytes")
    parts.append(f"win={win if win is not None else seg.get('win')}")
    opts = seg.get("options") or {}
    extra = []
    if "mss" in opts:
        extra.append(f"mss {opts['mss']}")
    if "wscale" in opts:
        extra.append(f"wscale {opts['wscale']}")
    if extra:
        parts.append("<" + ", ".join(extra) + ">")
    if seg.get("retransmission"):
        parts.append("[retransmission]")
    return " ".join(parts)


def _phases(segments: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[Any], list[Any]]:
    """Handshake segments (up to the client's first ACK), the middle, and the close (from
    the first FIN or RST on)."""
    hs_end = 0
    for i, s in enumerate(segments[:4]):
        if "SYN" in (s.get("flags") or []):
            hs_end = i + 1
        elif hs_end and s.get("from") == "client":
            hs_end = i + 1
            break
    rest = segments[hs_end:]
    cut = next(
        (i for i, s in enumerate(rest) if {"FIN", "RST"} & set(s.get("flags") or [])), len(rest)
    )
    return list(segments[:hs_end]), list(rest[:cut]), list(rest[cut:])


# What a highlighted segment is, by the kind of its window event.
_EVENT_TAGS = {
    "zero-window": ("zw", "zero window"),
    "zero-window-probe": ("probe", "zero-window probe"),
    "window-update": ("update", "window update"),
}
# Segments drawn from the middle of a connection that has highlighted ones: the first few
# of its data phase, then each highlighted one with the segment before it.
DATA_HEAD = 6
KEY_ARROWS = 40


def _positions(conn: Mapping[str, Any]) -> list[int]:
    """Each kept segment's place among all the connection's segments: its ``pos``, or
    for records without one, its place in the list with the omitted ones before the
    tail (they were always taken from the middle)."""
    segments = list(conn.get("segments") or [])
    if all("pos" in s for s in segments):
        return [int(s["pos"]) for s in segments]
    omitted = int(conn.get("segments_omitted") or 0)
    head = len(segments) - SEGMENTS_TAIL if omitted else len(segments)
    return [i if i < head else i + omitted for i in range(len(segments))]


def _tags(conn: Mapping[str, Any]) -> dict[int, list[tuple[str, str]]]:
    """Segment index -> ``(class, text)`` of what makes it worth a highlight: a window
    event, a retransmission, a RST (answering a SYN: the port is closed) and the first
    data a side sends after its peer's FIN."""
    tags: dict[int, list[tuple[str, str]]] = {}
    for e in conn.get("window_events") or []:
        tag = _EVENT_TAGS.get(str(e.get("kind")))
        if tag is not None:
            tags.setdefault(int(e.get("index") or 0), []).append(tag)
    segments = list(conn.get("segments") or [])
    synack = any({"SYN", "ACK"} <= set(s.get("flags") or []) for s in segments)
    fin_from: set[str] = set()
    after_fin: set[str] = set()
    for s in segments:
        flags, index, side = set(s.get("flags") or []), int(s.get("index") or 0), s.get("from")
        if s.get("retransmission"):
            what = "SYN retransmitted" if flags == {"SYN"} else "retransmission"
            tags.setdefault(index, []).append(("rt", what))
        if "RST" in flags:
            text = "reset"
            if not synack:
                text = "RST answers the SYN: port closed"
            elif side in fin_from and after_fin - {side}:
                text = "RST answers data sent after its FIN"
            tags.setdefault(index, []).append(("rst", text))
        peer = "server" if side == "client" else "client"
        if s.get("len") and peer in fin_from and side not in after_fin:
            after_fin.add(str(side))
            tags.setdefault(index, []).append(("late", f"data after the {peer}'s FIN"))
        if "FIN" in flags:
            fin_from.add(str(side))
    return tags


def _shown(conn: Mapping[str, Any], tags: Mapping[int, Any]) -> list[tuple[int, Mapping[str, Any]]]:
    """The ``(pos, segment)`` pairs to draw: the handshake, the start of the data phase
    (all of it up to :data:`DATA_ARROWS` when nothing is highlighted), each highlighted
    segment with the one before it, and the close."""
    segments = list(conn.get("segments") or [])
    pairs = list(zip(_positions(conn), segments, strict=True))
    opening, middle, _ = _phases(segments)
    a, b = len(opening), len(opening) + len(middle)
    keys = [i for i in range(a, b) if int(segments[i].get("index") or 0) in tags]
    if not keys:
        return pairs[: a + DATA_ARROWS] + pairs[b:] if b - a > DATA_ARROWS else pairs
    chosen = set(range(a, min(b, a + DATA_HEAD)))
    for i in keys[:KEY_ARROWS]:
        chosen |= {i - 1, i} if i > a else {i}
    return pairs[:a] + [pairs[i] for i in sorted(chosen)] + pairs[b:]


# A line of the diagram: a segment's arrow, a probe program's call, or a number of
# segments not drawn.
_Line = Mapping[str, Any] | Call | int


def sequence_svg(conn: Mapping[str, Any], calls: Sequence[Call] = ()) -> str:
    """The connection drawn like the course's timing figures. Highlighted segments (see
    :func:`_tags`) get a band and a tag; a run of segments not drawn becomes one "… N
    segments …" line; ``calls`` (time, text, failed) are the client program's own calls,
    drawn on the client's line in time order."""
    tags = _tags(conn)
    lines = _lines(conn, tags, calls)
    height = 70 + _STEP * len(lines) + 20
    out = [
        f"<svg class=seq width={_SEQ_W} height={height} "
        f'viewBox="0 0 {_SEQ_W} {height}" role=img aria-label="sequence diagram">'
        '<defs><marker id=ah viewBox="0 0 10 10" refX=10 refY=5 markerWidth=7 markerHeight=7 '
        'orient=auto-start-reverse><path d="M0,0 L10,5 L0,10 z" class=head /></marker></defs>'
    ]
    out += _lifelines(conn, height)
    out += [_draw(line, 70 + _STEP * k, tags) for k, line in enumerate(lines)]
    out.append("</svg>")
    return "<div class=scroll>" + "".join(out) + "</div>"


def _lines(conn: Mapping[str, Any], tags: Mapping[int, Any], calls: Sequence[Call]) -> list[_Line]:
    """The segments drawn, in order, with the calls made before each one and a gap
    wherever segments are left out (at the end too)."""
    lines: list[_Line] = []
    pending = sorted(calls)
    last_pos = -1
    for pos, seg in _shown(conn, tags):
        t = float(seg.get("t") or 0)
        while pending and pending[0][0] < t:
            lines.append(pending.pop(0))
        if pos > last_pos + 1:
            lines.append(pos - last_pos - 1)
        lines.append(seg)
        last_pos = pos
    total = int(conn.get("segment_count") or last_pos + 1)
    if total > last_pos + 1:
        lines.append(total - last_pos - 1)
    return lines + pending


def _lifelines(conn: Mapping[str, Any], height: int) -> list[str]:
    client, server = conn.get("client") or {}, conn.get("server") or {}
    return [
        f"<rect class=life x={x - 85} y=6 width=170 height=40 rx=5 />"
        f"<text class=lifename x={x} y=23>{esc(side.get('node') or role)} ({role})</text>"
        f"<text class=lifeaddr x={x} y=39>{esc(side.get('ip'))}:{esc(side.get('port'))}</text>"
        f"<line class=lifeline x1={x} y1=46 x2={x} y2={height - 6} />"
        for x, side, role in ((_LEFT, client, "client"), (_RIGHT, server, "server"))
    ]


def _draw(line: _Line, y: int, tags: Mapping[int, Sequence[tuple[str, str]]]) -> str:
    if isinstance(line, int):
        return (
            f"<text class=more x={(_LEFT + _RIGHT) // 2} y={y + 12}>… {line} segment"
            f"{'s' if line != 1 else ''} …<title>not drawn; the packet table has the first "
            "and last ones and every highlighted one</title></text>"
        )
    if isinstance(line, tuple):
        return _call_row(line, y)
    return _arrow(line, y, tags.get(int(line.get("index") or 0), []))


def _arrow(seg: Mapping[str, Any], y: int, tags: Sequence[tuple[str, str]]) -> str:
    from_client = seg.get("from") == "client"
    x1, x2 = (_LEFT, _RIGHT) if from_client else (_RIGHT, _LEFT)
    flags = set(seg.get("flags") or [])
    cls = next((f.lower() for f in ("SYN", "FIN", "RST") if f in flags), "")
    cls = cls or ("data" if seg.get("len") else "ack")
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
        f"+{float(seg.get('t') or 0):.6f}s</text>{tag_text}"
        f"<text class=idx x={_SEQ_W - 8} y={y + 12}>#{esc(seg.get('index'))}</text></g>"
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
