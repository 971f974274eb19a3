"""The report's charts for what a sequence diagram shows badly: a window over time, the
connections of one service side by side in time, and a server's restarts.

Each function takes the plain JSON data of summary.json (connection records of
:mod:`lab.evidence.connections`) or run.json and returns one inline ``<svg>`` (in a scrolling
``<div>``), or "" when there is nothing to draw. Every value that comes from a file goes
through :func:`lab.report.markup.esc`. Marks carry a class per kind (``probe-mark``,
``syn-rt`` ...) and a ``<title>`` with their numbers, so a reader can hover them and a test
can count them; their style sheet is ``assets/figures.css``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lab.report.markup import esc

# Rows of a service timeline; connections beyond are left out (the page says so).
TIMELINE_ROWS = 60


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _ticks(vmax: float, n: int = 5) -> list[float]:
    """Round tick values from 0 to about ``vmax``."""
    if vmax <= 0:
        return [0.0]
    raw = vmax / n
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(vmax / step) + 1)]


def _secs(v: float) -> str:
    return f"{v:.4g}"


# -- the advertised window over time ----------------------------------------------------------

_WC_W, _WC_H, _WC_L, _WC_R, _WC_T, _WC_B = 860, 250, 70, 24, 46, 44


def window_chart(conn: Mapping[str, Any]) -> str:
    """The window each side that closed it advertised, over time (a step line: a window
    holds until the next segment announces another), with the closed spans shaded, every
    zero-window segment on the axis, every zero-window probe on a rail above it and every
    window update where it reopened the window."""
    series: Mapping[str, Sequence[Sequence[float]]] = conn.get("window_series") or {}
    events = list(conn.get("window_events") or [])
    if not series and not events:
        return ""
    tmax = (
        max(
            [float(conn.get("duration") or 0)]
            + [float(p[0]) for pts in series.values() for p in pts]
            + [float(e.get("t") or 0) for e in events]
        )
        or 1e-6
    )
    wmax = max([float(p[1]) for pts in series.values() for p in pts] + [1.0])
    plot_w, plot_h = _WC_W - _WC_L - _WC_R, _WC_H - _WC_T - _WC_B

    def x(t: float) -> float:
        return _WC_L + plot_w * t / tmax

    def y(w: float) -> float:
        return _WC_T + plot_h * (1 - w / wmax)

    out = [
        f'<svg class="chart window" width={_WC_W} height={_WC_H} viewBox="0 0 {_WC_W} {_WC_H}" '
        'role=img aria-label="advertised window over time">',
        f"<text class=ctitle x={_WC_L} y=16>advertised window (bytes) over time</text>",
    ]
    out += _axes(_WC_L, _WC_T, plot_w, plot_h, tmax, wmax, x, y, "s")
    colours = {"client": "c-client", "server": "c-server"}
    for side, pts in series.items():
        out += _closed_spans(pts, x, y(0), tmax)
        if pts:
            d = f"M{x(pts[0][0]):.1f},{y(pts[0][1]):.1f}"
            for t, w in pts[1:]:
                d += f"H{x(t):.1f}V{y(w):.1f}"
            d += f"H{x(tmax):.1f}"
            out.append(
                f'<path class="wline {colours.get(side, "")}" d="{d}">'
                f"<title>window advertised by the {esc(side)}</title></path>"
            )
    out += _window_marks(events, x, y)
    out.append(_window_legend(series, events))
    out.append("</svg>")
    return "<div class=scroll>" + "".join(out) + "</div>"


def _axes(
    left: float,
    top: float,
    w: float,
    h: float,
    tmax: float,
    vmax: float,
    x: Any,
    y: Any,
    unit: str,
) -> list[str]:
    out = [
        f"<line class=axis x1={left} y1={top + h} x2={left + w} y2={top + h} />",
        f"<line class=axis x1={left} y1={top} x2={left} y2={top + h} />",
    ]
    for t in _ticks(tmax):
        out.append(
            f"<line class=grid x1={x(t):.1f} y1={top} x2={x(t):.1f} y2={top + h} />"
            f"<text class=tick x={x(t):.1f} y={top + h + 16}>{_secs(t)} {unit}</text>"
        )
    for v in _ticks(vmax, 3):
        out.append(f'<text class="tick y" x={left - 6} y={y(v) + 4:.1f}>{int(v)}</text>')
    return out


def _closed_spans(pts: Sequence[Sequence[float]], x: Any, y0: float, tmax: float) -> list[str]:
    """A shaded band over each stretch of time the window stayed 0."""
    out = []
    for i, (t, w) in enumerate(pts):
        if w != 0 or (i and pts[i - 1][1] == 0):
            continue
        end = next((p[0] for p in pts[i + 1 :] if p[1] != 0), tmax)
        x1, x2 = x(t), max(x(end), x(t) + 2)
        out.append(
            f"<rect class=closed x={x1:.1f} y={_WC_T} width={x2 - x1:.1f} "
            f"height={y0 - _WC_T:.1f}><title>window 0 for {end - t:.3f} s</title></rect>"
            f"<text class=closedlabel x={(x1 + x2) / 2:.1f} y={_WC_T + 14}>"
            f"window 0 for {end - t:.2f} s</text>"
        )
    return out


def _window_marks(events: Sequence[Mapping[str, Any]], x: Any, y: Any) -> list[str]:
    out = []
    y0 = y(0)
    for e in events:
        t = float(e.get("t") or 0)
        title = (
            f"<title>#{esc(e.get('index'))} +{t:.3f} s: {esc(e.get('kind'))} "
            f"from the {esc(e.get('from'))}, window {esc(e.get('win_bytes'))}</title>"
        )
        kind = e.get("kind")
        if kind == "zero-window":
            out.append(f"<circle class=zw-mark cx={x(t):.1f} cy={y0:.1f} r=4>{title}</circle>")
        elif kind == "zero-window-probe":
            cx, cy = x(t), y0 - 16
            out.append(
                f'<path class=probe-mark d="M{cx:.1f},{cy - 6:.1f} l6,6 l-6,6 l-6,-6 z">'
                f"{title}</path>"
            )
        elif kind == "window-update":
            w = float(e.get("win_bytes") or 0)
            out.append(
                f"<g class=update-mark><circle cx={x(t):.1f} cy={y(w):.1f} r=5 />"
                f"<text x={x(t) - 8:.1f} y={y(w) - 9:.1f}>window update → "
                f"{esc(e.get('win_bytes'))} B</text>{title}</g>"
            )
    return out


def _window_legend(series: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> str:
    count = {
        k: sum(1 for e in events if e.get("kind") == k)
        for k in ("zero-window", "zero-window-probe", "window-update")
    }
    sides = " and ".join(f"the {s}'s window" for s in series) or "no window closed"
    return (
        f'<text class="legend left" x={_WC_L} y=34>{esc(sides)}: '
        f"<tspan class=zw-mark>●</tspan> {_n(count['zero-window'], 'zero-window segment')}   "
        f"<tspan class=probe-mark>◆</tspan> {_n(count['zero-window-probe'], 'probe')}   "
        f"<tspan class=lg-update>○</tspan> {_n(count['window-update'], 'window update')}</text>"
    )


# -- the connections of a service, in time ------------------------------------------------------

_GT_LABEL, _GT_W, _GT_ROW, _GT_TOP = 250, 1000, 28, 40


def _stages(conn: Mapping[str, Any]) -> dict[str, float | None]:
    tl = conn.get("timeline") or {}
    fins = [
        v
        for v in (_num(tl.get("client_fin")), _num(tl.get("server_fin")), _num(tl.get("rst")))
        if v is not None
    ]
    syns = [float(s) for s in tl.get("syns") or [] if _num(s) is not None]
    return {
        "syn": syns[0] if syns else 0.0,
        "done": _num(tl.get("handshake_done")),
        "reply": _num(tl.get("first_reply")),
        "close": min(fins) if fins else None,
        "rst": _num(tl.get("rst")),
        "end": _num(tl.get("end")) or float(conn.get("duration") or 0),
    }


def service_timeline(service: str, program: str, conns: Sequence[Mapping[str, Any]]) -> str:
    """One row per connection to a service, on one time axis: the SYN (a dot; a cross
    for each retransmitted SYN) and the wait for the handshake (a thin line), the time
    connected but not yet served (amber: in the accept queue of an iterative server), the
    time served (green: from the server's first reply), and the close (from the first FIN
    or RST, a RST in red)."""
    rows = [c for c in conns if c.get("timeline")][:TIMELINE_ROWS]
    if len(rows) < 2:
        return ""
    t0 = min(float(c.get("start") or 0) for c in rows)
    span = max(float(c.get("start") or 0) - t0 + (_stages(c)["end"] or 0) for c in rows) or 1e-6
    plot = _GT_W - _GT_LABEL - 30
    height = _GT_TOP + _GT_ROW * len(rows) + 34

    def x(t: float) -> float:
        return _GT_LABEL + plot * t / span

    waiting = "in accept queue" if program == "iterative_server" else "waiting"
    out = [
        f'<svg class="chart gantt" width={_GT_W} height={height} viewBox="0 0 {_GT_W} {height}" '
        f'role=img aria-label="connections to {esc(service)} over time">',
        f"<text class=ctitle x=8 y=16>{esc(service)} ({esc(program)}): its connections "
        "in time</text>",
        f"<text class=legend x={_GT_W - 12} y=16>• SYN  × SYN retransmitted  ─ connecting  "
        f"<tspan class=lg-wait>■</tspan> connected, {waiting}  <tspan class=lg-served>■"
        "</tspan> served  <tspan class=lg-close>■</tspan> closing</text>",
    ]
    bottom = _GT_TOP + _GT_ROW * len(rows)
    out.append(f"<line class=axis x1={_GT_LABEL} y1={bottom} x2={_GT_LABEL + plot} y2={bottom} />")
    for t in _ticks(span):
        out.append(
            f"<line class=grid x1={x(t):.1f} y1={_GT_TOP - 8} x2={x(t):.1f} y2={bottom} />"
            f"<text class=tick x={x(t):.1f} y={bottom + 16}>{_secs(t)} s</text>"
        )
    for i, c in enumerate(rows):
        out.append(
            _gantt_row(c, _GT_TOP + _GT_ROW * i, float(c.get("start") or 0) - t0, x, waiting)
        )
    out.append("</svg>")
    more = ""
    if len([c for c in conns if c.get("timeline")]) > TIMELINE_ROWS:
        more = f"<p class=note>The first {TIMELINE_ROWS} connections are drawn.</p>"
    return "<div class=scroll>" + "".join(out) + "</div>" + more


def _gantt_row(conn: Mapping[str, Any], top: int, base: float, x: Any, waiting: str) -> str:
    st = _stages(conn)
    mid = top + _GT_ROW // 2
    client = conn.get("client") or {}
    label = (
        f"{conn.get('scenario') or '-'} · {client.get('node') or client.get('ip')}:"
        f"{client.get('port')}"
    )
    parts = [
        f"<g class=grow><text class=rowlabel x=8 y={mid + 4}>{esc(conn.get('id'))} "
        f"{esc(label)}</text>"
    ]
    syn = base + (st["syn"] or 0)
    connected = st["done"] if st["done"] is not None else (st["rst"] or st["end"])
    parts.append(
        f"<line class=g-connect x1={x(syn):.1f} y1={mid} x2={x(base + (connected or 0)):.1f} "
        f"y2={mid} />"
    )

    def at(t: float) -> float:
        return float(x(base + t))

    parts += [_bar(span, at, mid) for span in _spans(st, waiting)]
    parts += _syn_marks((conn.get("timeline") or {}).get("syns") or [], at, mid)
    if st["rst"] is not None:
        parts.append(
            f"<rect class=g-rst x={x(base + st['rst']) - 2:.1f} y={mid - 10} width=4 "
            f"height=20><title>RST +{st['rst']:.3f} s</title></rect>"
        )
    parts.append("</g>")
    return "".join(parts)


# A bar of a timeline row: (class, from, to, text); not drawn without both ends.
_Span = tuple[str, float | None, float | None, str]


def _spans(st: Mapping[str, float | None], waiting: str) -> list[_Span]:
    """Connected but waiting (until the first reply, or the close), served (from the first
    reply to the close), and closing."""
    spans: list[_Span] = []
    done, served_from, close = st["done"], st["reply"], st["close"]
    stop = close if close is not None else st["end"]
    if done is not None:
        until = served_from if served_from is not None else stop
        if until is not None:
            spans.append(("g-wait", done, until, f"{waiting} {until - done:.2f} s"))
    if served_from is not None:
        spans.append(("g-served", served_from, stop, f"served {(stop or 0) - served_from:.2f} s"))
    if close is not None:
        spans.append(("g-close", close, st["end"], "closing"))
    return spans


def _bar(span: _Span, at: Callable[[float], float], mid: int) -> str:
    """The span as a bar, labelled inside when the label fits."""
    cls, a, b, text = span
    if a is None or b is None or b < a:
        return ""
    x1, x2 = at(a), at(b)
    w = max(x2 - x1, 2)
    out = (
        f"<rect class={cls} x={x1:.1f} y={mid - 8} width={w:.1f} height=16>"
        f"<title>{esc(text)}</title></rect>"
    )
    if w > 7 * len(text) + 10:
        out += f"<text class=barlabel x={x1 + 5:.1f} y={mid + 4}>{esc(text)}</text>"
    return out


def _syn_marks(syns: Sequence[Any], at: Callable[[float], float], mid: int) -> list[str]:
    """A dot for the SYN, a cross for each one sent again."""
    out = []
    for s in syns:
        cx = at(float(s))
        if s == syns[0]:
            out.append(
                f"<circle class=g-syn cx={cx:.1f} cy={mid} r=3.5>"
                f"<title>SYN +{float(s):.3f} s</title></circle>"
            )
        else:
            out.append(
                f'<path class=syn-rt d="M{cx - 5:.1f},{mid - 5} l10,10 m0,-10 l-10,10">'
                f"<title>SYN retransmitted +{float(s):.3f} s</title></path>"
            )
    return out


# -- a server's restarts -----------------------------------------------------------------------

_RS_W, _RS_H, _RS_GAP = 280, 150, 44


def restart_timeline(
    first: Sequence[str], steps: Sequence[tuple[str, list[str], str, bool]]
) -> str:
    """The server's life as boxes left to right: ``first`` the lines of the first start,
    then per restart ``(title, lines, outcome, bound)`` (a bound restart listens, in
    green; one that could not bind, in red)."""
    if not steps:
        return ""
    boxes = [("server started", list(first), "", True), *steps]
    width = 20 + len(boxes) * (_RS_W + _RS_GAP)
    out = [
        f'<svg class="chart restarts" width={width} height={_RS_H + 20} '
        f'viewBox="0 0 {width} {_RS_H + 20}" role=img aria-label="restarts">',
        '<defs><marker id=rah viewBox="0 0 10 10" refX=10 refY=5 markerWidth=8 markerHeight=8 '
        'orient=auto><path d="M0,0 L10,5 L0,10 z" class=head /></marker></defs>',
    ]
    for i, (title, lines, outcome, bound) in enumerate(boxes):
        x = 10 + i * (_RS_W + _RS_GAP)
        cls = "rs-first" if i == 0 else ("restart bound" if bound else "restart failed")
        text = "".join(
            f"<text class=rsline x={x + 10} y={46 + 17 * k}>{esc(_clip(line))}"
            f"<title>{esc(line)}</title></text>"
            for k, line in enumerate(lines[:5])
        )
        result = (
            f"<text class=rsout x={x + 10} y={_RS_H - 4}>{esc(_clip(outcome))}"
            f"<title>{esc(outcome)}</title></text>"
            if outcome
            else ""
        )
        out.append(
            f'<g class="{cls}"><rect x={x} y=10 width={_RS_W} height={_RS_H} rx=8 />'
            f"<text class=rstitle x={x + 10} y=28>{esc(title)}</text>{text}{result}</g>"
        )
        if i:
            out.append(
                f"<line class=rsarrow x1={x - _RS_GAP + 4} y1={10 + _RS_H // 2} x2={x - 4} "
                f'y2={10 + _RS_H // 2} marker-end="url(#rah)" />'
            )
    out.append("</svg>")
    return "<div class=scroll>" + "".join(out) + "</div>"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _clip(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
