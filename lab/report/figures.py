"""The report's charts for what a sequence diagram shows badly: a window over time, the
connections of one service side by side in time (a server's restarts are drawn by
:mod:`lab.report.restarts`).

Each function takes typed connection records (:mod:`lab.evidence.records`) and returns
one inline ``<svg>`` (in a scrolling ``<div>``), or "" when there is nothing to draw.
Every value that comes from a file goes through :func:`lab.report.markup.esc`. Marks
carry a class per kind (``probe-mark``, ``syn-rt`` ...) and a ``<title>`` with their
numbers, so a reader can hover them and a test can count them; their style sheet is
``assets/figures.css``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from lab.evidence.records import TcpRecord, WindowEventRecord
from lab.i18n import t as msg
from lab.i18n import t_or
from lab.report.markup import esc

# Rows of a service timeline; connections beyond are left out (the page says so).
TIMELINE_ROWS = 60

# A chart's time (or value) to its x (or y) in pixels.
_ToX = Callable[[float], float]


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


@dataclass(frozen=True)
class _Scale:
    """A chart's plot area (``left``, ``top``, ``width``, ``height`` in pixels) and the
    largest time and value it shows."""

    left: int
    top: int
    width: int
    height: int
    tmax: float
    vmax: float

    def x(self, t: float) -> float:
        return self.left + self.width * t / self.tmax

    def y(self, v: float) -> float:
        return self.top + self.height * (1 - v / self.vmax)


def window_chart(conn: TcpRecord) -> str:
    """The window each side that closed it advertised, over time (a step line: a window
    holds until the next segment announces another), with the closed spans shaded, every
    zero-window segment on the axis, every zero-window probe on a rail above it and every
    window update where it reopened the window."""
    series, events = conn.window_series, conn.window_events
    if not series and not events:
        return ""
    scale = _window_scale(conn)
    out = [
        f'<svg class="chart window" width={_WC_W} height={_WC_H} viewBox="0 0 {_WC_W} {_WC_H}" '
        f'role=img aria-label="{esc(msg("fig.window.aria"))}">',
        f"<text class=ctitle x={_WC_L} y=16>{esc(msg('fig.window.title'))}</text>",
    ]
    out += _axes(scale, "s")
    for side, pts in series.items():
        out += _closed_spans(pts, scale.x, scale.y(0), scale.tmax)
        out += _window_line(side, pts, scale)
    out += _window_marks(events, scale.x, scale.y)
    out.append(_window_legend(series, events))
    out.append("</svg>")
    return "<div class=scroll>" + "".join(out) + "</div>"


def _window_scale(conn: TcpRecord) -> _Scale:
    """Time up to the last segment, event or the connection's end; the window up to the
    largest advertised."""
    points = [p for pts in conn.window_series.values() for p in pts]
    times = [conn.duration] + [p[0] for p in points] + [e.t for e in conn.window_events]
    tmax = max(float(t) for t in times) or 1e-6
    wmax = max([float(p[1]) for p in points] + [1.0])
    plot_w, plot_h = _WC_W - _WC_L - _WC_R, _WC_H - _WC_T - _WC_B
    return _Scale(_WC_L, _WC_T, plot_w, plot_h, tmax, wmax)


def _window_line(side: str, pts: Sequence[Sequence[float]], scale: _Scale) -> list[str]:
    """One side's window as a step line, held to the end of the chart."""
    if not pts:
        return []
    x, y = scale.x, scale.y
    d = f"M{x(pts[0][0]):.1f},{y(pts[0][1]):.1f}"
    for t, w in pts[1:]:
        d += f"H{x(t):.1f}V{y(w):.1f}"
    d += f"H{x(scale.tmax):.1f}"
    colour = {"client": "c-client", "server": "c-server"}.get(side, "")
    return [
        f'<path class="wline {colour}" d="{d}">'
        f"<title>window advertised by the {esc(side)}</title></path>"
    ]


def _axes(scale: _Scale, unit: str) -> list[str]:
    left, top, w, h, x, y = scale.left, scale.top, scale.width, scale.height, scale.x, scale.y
    out = [
        f"<line class=axis x1={left} y1={top + h} x2={left + w} y2={top + h} />",
        f"<line class=axis x1={left} y1={top} x2={left} y2={top + h} />",
    ]
    for t in _ticks(scale.tmax):
        out.append(
            f"<line class=grid x1={x(t):.1f} y1={top} x2={x(t):.1f} y2={top + h} />"
            f"<text class=tick x={x(t):.1f} y={top + h + 16}>{_secs(t)} {unit}</text>"
        )
    for v in _ticks(scale.vmax, 3):
        out.append(f'<text class="tick y" x={left - 6} y={y(v) + 4:.1f}>{int(v)}</text>')
    return out


def _closed_spans(pts: Sequence[Sequence[float]], x: _ToX, y0: float, tmax: float) -> list[str]:
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


def _window_marks(events: Sequence[WindowEventRecord], x: _ToX, y: _ToX) -> list[str]:
    out = []
    y0 = y(0)
    for e in events:
        t = e.t
        title = (
            f"<title>#{esc(e.index)} +{t:.3f} s: {esc(e.kind)} "
            f"from the {esc(e.sender)}, window {esc(e.win_bytes)}</title>"
        )
        if e.kind == "zero-window":
            out.append(f"<circle class=zw-mark cx={x(t):.1f} cy={y0:.1f} r=4>{title}</circle>")
        elif e.kind == "zero-window-probe":
            cx, cy = x(t), y0 - 16
            out.append(
                f'<path class=probe-mark d="M{cx:.1f},{cy - 6:.1f} l6,6 l-6,6 l-6,-6 z">'
                f"{title}</path>"
            )
        elif e.kind == "window-update":
            w = float(e.win_bytes or 0)
            out.append(
                f"<g class=update-mark><circle cx={x(t):.1f} cy={y(w):.1f} r=5 />"
                f"<text x={x(t) - 8:.1f} y={y(w) - 9:.1f}>window update → "
                f"{esc(e.win_bytes)} B</text>{title}</g>"
            )
    return out


def _window_legend(series: Mapping[str, object], events: Sequence[WindowEventRecord]) -> str:
    count = {
        k: sum(1 for e in events if e.kind == k)
        for k in ("zero-window", "zero-window-probe", "window-update")
    }
    sides = msg("fig.window.and").join(
        msg("fig.window.side", side=t_or(f"side.{s}", s)) for s in series
    ) or msg("fig.window.none")
    zero = esc(_n("fig.window.zero", count["zero-window"]))
    probes = esc(_n("fig.window.probes", count["zero-window-probe"]))
    updates = esc(_n("fig.window.updates", count["window-update"]))
    return (
        f'<text class="legend left" x={_WC_L} y=34>{esc(sides)}: '
        f"<tspan class=zw-mark>●</tspan> {zero}   "
        f"<tspan class=probe-mark>◆</tspan> {probes}   "
        f"<tspan class=lg-update>○</tspan> {updates}</text>"
    )


# -- the connections of a service, in time ------------------------------------------------------

_GT_LABEL, _GT_W, _GT_ROW, _GT_TOP = 250, 1000, 28, 40


@dataclass(frozen=True)
class _Stages:
    """When a connection reached each stage of a timeline row, after its first segment:
    ``close`` is its first FIN or RST, ``end`` its last segment."""

    syn: float
    done: float | None
    reply: float | None
    close: float | None
    rst: float | None
    end: float


def _stages(conn: TcpRecord) -> _Stages:
    tl = conn.timeline
    fins = [v for v in (tl.client_fin, tl.server_fin, tl.rst) if v is not None]
    return _Stages(
        syn=float(tl.syns[0]) if tl.syns else 0.0,
        done=_num(tl.handshake_done),
        reply=_num(tl.first_reply),
        close=float(min(fins)) if fins else None,
        rst=_num(tl.rst),
        end=_num(tl.end) or float(conn.duration),
    )


def service_timeline(
    service: str, program: str, conns: Sequence[TcpRecord], model: str = "other"
) -> str:
    """One row per connection to a service, on one time axis: the SYN (a dot; a cross
    for each retransmitted SYN) and the wait for the handshake (a thin line), the time
    connected but not yet served (amber: in the accept queue of an iterative server), the
    time served (green: from the server's first reply), and the close (from the first FIN
    or RST, a RST in red)."""
    rows = list(conns[:TIMELINE_ROWS])
    if len(rows) < 2:
        return ""
    t0 = min(float(c.start) for c in rows)
    span = max(float(c.start) - t0 + _stages(c).end for c in rows) or 1e-6
    plot = _GT_W - _GT_LABEL - 30

    def x(t: float) -> float:
        return _GT_LABEL + plot * t / span

    waiting = msg("fig.gantt.queued" if model == "iterative" else "fig.gantt.waiting")
    bottom = _GT_TOP + _GT_ROW * len(rows)
    out = _gantt_head(service, program, waiting, bottom + 34)
    out += _gantt_axis(span, plot, x, bottom)
    for i, c in enumerate(rows):
        out.append(_gantt_row(c, _GT_TOP + _GT_ROW * i, float(c.start) - t0, x, waiting))
    out.append("</svg>")
    more = ""
    if len(conns) > TIMELINE_ROWS:
        more = f"<p class=note>{esc(msg('fig.gantt.more', n=TIMELINE_ROWS))}</p>"
    return "<div class=scroll>" + "".join(out) + "</div>" + more


def _gantt_head(service: str, program: str, waiting: str, height: int) -> list[str]:
    return [
        f'<svg class="chart gantt" width={_GT_W} height={height} viewBox="0 0 {_GT_W} {height}" '
        f'role=img aria-label="{esc(msg("fig.gantt.aria", service=service))}">',
        f"<text class=ctitle x=8 y=16>"
        f"{esc(msg('fig.gantt.title', service=service, program=program))}</text>",
        f"<text class=legend x={_GT_W - 12} y=16>"
        + msg(
            "fig.gantt.legend",
            wait="<tspan class=lg-wait>■</tspan>",
            waiting=esc(waiting),
            served="<tspan class=lg-served>■</tspan>",
            closing="<tspan class=lg-close>■</tspan>",
        )
        + "</text>",
    ]


def _gantt_axis(span: float, plot: int, x: _ToX, bottom: int) -> list[str]:
    out = [f"<line class=axis x1={_GT_LABEL} y1={bottom} x2={_GT_LABEL + plot} y2={bottom} />"]
    for t in _ticks(span):
        out.append(
            f"<line class=grid x1={x(t):.1f} y1={_GT_TOP - 8} x2={x(t):.1f} y2={bottom} />"
            f"<text class=tick x={x(t):.1f} y={bottom + 16}>{_secs(t)} s</text>"
        )
    return out


def _gantt_row(conn: TcpRecord, top: int, base: float, x: _ToX, waiting: str) -> str:
    st = _stages(conn)
    mid = top + _GT_ROW // 2
    client = conn.client
    label = f"{conn.scenario or '-'} · {client.node or client.ip}:{client.port}"
    parts = [
        f"<g class=grow><text class=rowlabel x=8 y={mid + 4}>{esc(conn.id)} {esc(label)}</text>"
    ]
    syn = base + st.syn
    connected = st.done if st.done is not None else (st.rst or st.end)
    parts.append(
        f"<line class=g-connect x1={x(syn):.1f} y1={mid} x2={x(base + (connected or 0)):.1f} "
        f"y2={mid} />"
    )

    def at(t: float) -> float:
        return float(x(base + t))

    parts += [_bar(span, at, mid) for span in _spans(st, waiting)]
    parts += _syn_marks(conn.timeline.syns, at, mid)
    if st.rst is not None:
        parts.append(
            f"<rect class=g-rst x={x(base + st.rst) - 2:.1f} y={mid - 10} width=4 "
            f"height=20><title>RST +{st.rst:.3f} s</title></rect>"
        )
    parts.append("</g>")
    return "".join(parts)


# A bar of a timeline row: (class, from, to, text); not drawn without both ends.
_Span = tuple[str, float | None, float | None, str]


def _spans(st: _Stages, waiting: str) -> list[_Span]:
    """Connected but waiting (until the first reply, or the close), served (from the first
    reply to the close), and closing."""
    spans: list[_Span] = []
    done, served_from, close = st.done, st.reply, st.close
    stop = close if close is not None else st.end
    if done is not None:
        until = served_from if served_from is not None else stop
        if until is not None:
            waited = msg("fig.gantt.waited", waiting=waiting, seconds=until - done)
            spans.append(("g-wait", done, until, waited))
    if served_from is not None:
        served = msg("fig.gantt.served", seconds=(stop or 0) - served_from)
        spans.append(("g-served", served_from, stop, served))
    if close is not None:
        spans.append(("g-close", close, st.end, msg("fig.gantt.closing")))
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


def _syn_marks(syns: Sequence[float], at: Callable[[float], float], mid: int) -> list[str]:
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


def _n(key: str, count: int) -> str:
    """``count`` things, the message ``key`` in its singular or plural form."""
    return msg(f"{key}.{'one' if count == 1 else 'many'}", n=count)
