"""The time-sequence graph of a connection, in the manner of Stevens' figures and
Wireshark's tcptrace graph: sequence number against time for the side that sent the data,
each segment a vertical bar from its first to its last byte; the peer's ACK as a step line
below the bars and the edge of its advertised window (ACK + window) as a step line above.
A retransmission is a red bar with an "R" over it, a spurious one orange with an "S": where
a bar sits at or under the ACK line, the data had already arrived.

One inline ``<svg>`` in a scrolling ``<div>`` like the other figures (style in
``assets/figures.css``); each bar and line has a ``<title>`` with its numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence

from lab.evidence.records import TcpRecord, TraceRecord
from lab.i18n import t as msg
from lab.i18n import t_or
from lab.report.markup import esc

_W, _H, _L, _R, _T, _B = 860, 320, 84, 24, 46, 44
_KIND = {  # class, mark, what (trace.kind.WHAT)
    0: ("ts-seg", "", "sent"),
    1: ("ts-rt", "R", "retransmitted"),
    2: ("ts-spur", "S", "spurious"),
}


def _ticks(vmax: float, n: int) -> list[float]:
    """Round tick values from 0 to about ``vmax``."""
    if vmax <= 0:
        return [0.0]
    raw = vmax / n
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(vmax / step) + 1)]


def _step(points: Sequence[tuple[float, float]], x: float, tmax: float) -> str:
    """A step path through ``points`` (already in pixels), held to ``tmax``'s x."""
    d = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
    for px, py in points[1:]:
        d += f"H{px:.1f}V{py:.1f}"
    return d + f"H{tmax:.1f}" if x <= tmax else d


def trace_chart(conn: TcpRecord) -> str:
    """The graph, or "" when the connection carried no data."""
    tr = conn.trace
    if tr is None or not tr.segments:
        return ""
    tmax = max([conn.duration, *(p[0] for p in tr.segments), *(p[0] for p in tr.acks)]) or 1e-6
    lo = min([p[1] for p in tr.segments] + [p[1] for p in tr.acks])
    top_data = max([p[2] for p in tr.segments] + [p[1] for p in tr.acks] + [lo + 1])
    # The window edge is drawn where it fits: a window far larger than the data would
    # squash the segments into a line at the bottom.
    top_edge = max([p[2] for p in tr.acks] + [top_data])
    hi = min(top_edge, top_data + 2 * (top_data - lo))
    clipped = top_edge > hi
    pw, ph = _W - _L - _R, _H - _T - _B

    def x(t: float) -> float:
        return _L + pw * t / tmax

    def y(v: float) -> float:
        return _T + ph * (1 - (v - lo) / (hi - lo))

    peer = t_or("side." + ("server" if tr.sender == "client" else "client"), "")
    title = msg("trace.title", side=t_or(f"side.{tr.sender}", tr.sender))
    out = [
        f'<svg class="chart trace" width={_W} height={_H} viewBox="0 0 {_W} {_H}" role=img '
        f'aria-label="{esc(msg("trace.aria"))}">',
        f"<text class=ctitle x={_L} y=16>{esc(title)}</text>",
        f"<line class=axis x1={_L} y1={_T + ph} x2={_L + pw} y2={_T + ph} />",
        f"<line class=axis x1={_L} y1={_T} x2={_L} y2={_T + ph} />",
    ]
    for t in _ticks(tmax, 5):
        out.append(
            f"<line class=grid x1={x(t):.1f} y1={_T} x2={x(t):.1f} y2={_T + ph} />"
            f"<text class=tick x={x(t):.1f} y={_T + ph + 16}>{t:.4g} s</text>"
        )
    for v in _ticks(hi - lo, 4):
        out.append(f'<text class="tick y" x={_L - 6} y={y(lo + v) + 4:.1f}>{int(lo + v)}</text>')
    if tr.acks:
        acks = [(x(t), y(a)) for t, a, _ in tr.acks]
        edges = [(x(t), y(min(w, hi))) for t, _, w in tr.acks]
        end = x(tmax)
        out.append(
            f'<path class=ts-ack d="{_step(acks, acks[-1][0], end)}">'
            f"<title>{esc(msg('trace.ack', peer=peer, ack=int(tr.acks[-1][1])))}</title></path>"
        )
        out.append(
            f'<path class=ts-win d="{_step(edges, edges[-1][0], end)}">'
            f"<title>{esc(msg('trace.edge', peer=peer))}</title></path>"
        )
    for t, start, stop, kind in tr.segments:
        cls, mark, what = _KIND.get(int(kind), _KIND[0])
        px, top, bottom = x(t), y(stop), y(start)
        what = msg(f"trace.kind.{what}")
        title = msg("trace.segment", what=what, t=t, start=int(start), stop=int(stop))
        out.append(
            f"<line class={cls} x1={px:.1f} y1={bottom:.1f} x2={px:.1f} "
            f"y2={min(top, bottom - 1):.1f}><title>{esc(title)}</title></line>"
        )
        if mark:
            out.append(f"<text class={cls}-mark x={px:.1f} y={top - 3:.1f}>{mark}</text>")
    out.append(_legend(tr, clipped))
    out.append("</svg>")
    return "<div class=scroll>" + "".join(out) + "</div>"


def _legend(tr: TraceRecord, clipped: bool) -> str:
    count = {k: sum(1 for p in tr.segments if p[3] == k) for k in (0, 1, 2)}
    notes = [
        f"<tspan class=ts-seg-mark>|</tspan> {esc(msg('trace.legend.sent', n=count[0]))}",
        f"<tspan class=ts-rt-mark>R</tspan> {esc(msg('trace.legend.retransmitted', n=count[1]))}",
        f"<tspan class=ts-spur-mark>S</tspan> {esc(msg('trace.legend.spurious', n=count[2]))}",
        "<tspan class=ts-ack-mark>—</tspan> ACK",
        "<tspan class=ts-win-mark>- -</tspan> "
        + esc(msg("trace.legend.edge") + (msg("trace.legend.clipped") if clipped else "")),
    ]
    if tr.thinned:
        notes.append(esc(msg("trace.legend.thinned")))
    return f'<text class="legend left" x={_L} y=34>{"   ".join(notes)}</text>'
