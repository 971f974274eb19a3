"""Pictures of single claims, drawn in a scenario's section when the scenario makes the
claim: the segment sizes against the MSS (``segments-within-mss``), which child holds
which 4-tuple (``connection-per-child``), the TIME_WAIT watched until it goes
(``time-wait-2msl``), and the probe's read() returns on a time line (``read-eintr``).

:mod:`lab.report.claim_pictures` maps the claims to these drawings; each reads the results
folder through :class:`lab.evidence.folder.Evidence`, the way the claim does, and returns one
inline ``<svg>`` in a ``<figure>`` ("" when there is nothing to draw). Every value from a file
goes through :func:`lab.report.markup.esc`; marks carry a class and a ``<title>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lab.evidence.analysis.tcp import CLIENT
from lab.evidence.folder import Evidence
from lab.i18n import t as msg
from lab.report.markup import esc
from lab.run.record import ProbeResult
from lab.spec.model import Scenario, Topology
from lab.verdict.demux import During, during_snapshots, established, four_tuple
from lab.verdict.scope import scenario_clients, scope, tcp
from lab.verdict.timewait import TWO_MSL, time_wait_series

_W, _L, _R = 860, 60, 30


def _figure(svg: str, caption: str) -> str:
    return (
        f"<figure class=claim-picture><div class=chart-scroll>{svg}</div>"
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def _svg(height: int, body: str, label: str) -> str:
    return (
        f'<svg class=claim-svg width="{_W}" height="{height}" viewBox="0 0 {_W} {height}" '
        f'role="img" aria-label="{esc(label)}" font-size="11">{body}</svg>'
    )


# -- segment sizes against the MSS -----------------------------------------------------------


def segments_picture(ev: Evidence, topo: Topology, sc: Scenario) -> str:
    """One bar per data segment of the first connection, client's then server's, each as
    high as its payload, under a dashed line at the MSS its receiver announced."""
    _, conns = tcp(topo, ev, sc)
    if not conns:
        return ""
    c = conns[0]
    segs = [s for s in c.segments if s.payload_len][:80]
    mss = max(c.handshake.client_mss or 0, c.handshake.server_mss or 0)
    if not segs or not mss:
        return ""
    h, top, base = 200, 24, 170
    step = (_W - _L - _R) / len(segs)

    def y(v: float) -> float:
        return base - (base - top) * v / mss

    bars = []
    for k, s in enumerate(segs):
        x = _L + k * step
        who = "client" if s.sender == CLIENT else "server"
        bar = msg("pic.segments.bar", index=s.index, who=msg("side." + who), n=s.payload_len)
        bars.append(
            f'<rect class="seg-{who}" x="{x:.1f}" y="{y(s.payload_len):.1f}" '
            f'width="{max(step - 2, 1):.1f}" height="{base - y(s.payload_len):.1f}">'
            f"<title>{esc(bar)}</title></rect>"
        )
    guide = (
        f'<line class=mss-line x1="{_L}" x2="{_W - _R}" y1="{y(mss):.1f}" y2="{y(mss):.1f}" '
        f'stroke-dasharray="5 3" stroke="currentColor"/>'
        f'<text x="{_L - 4}" y="{y(mss) + 4:.1f}" text-anchor="end">MSS {mss}</text>'
        f'<line x1="{_L}" x2="{_W - _R}" y1="{base}" y2="{base}" stroke="currentColor"/>'
        f'<text x="{_L}" y="{base + 18}">{esc(msg("pic.segments.legend"))}</text>'
    )
    largest = max(s.payload_len for s in segs)
    caption = msg("pic.segments.caption", count=len(segs), largest=largest, mss=mss)
    return _figure(_svg(h, "".join(bars) + guide, caption), caption)


# -- which child holds which 4-tuple ---------------------------------------------------------


def demux_picture(ev: Evidence, topo: Topology, sc: Scenario) -> str:
    """The server's parent with its listening socket, and a box per child with the
    4-tuple it holds (the 'during' snapshots)."""
    during = during_snapshots(topo, ev, sc)
    if not isinstance(during, During):
        return ""
    rows = established(scope(topo, ev, sc), during)[:20]
    if not rows:
        return ""
    port = topo.service(sc.service).port
    row_h = 30
    h = 30 + row_h * len(rows)
    mid = h / 2
    parts = [
        f'<rect class=parent x="10" y="{mid - 22:.0f}" width="190" height="44" rx="6"/>'
        f'<text x="20" y="{mid - 4:.0f}">server pid {during.pid}</text>'
        f'<text x="20" y="{mid + 12:.0f}">LISTEN *:{port}</text>'
    ]
    for k, row in enumerate(rows):
        y = 15 + k * row_h
        owner = ", ".join(str(p) for p in sorted(during.owners(row)))
        cip, cport, sip, sport = four_tuple(row)
        holds = msg("pic.demux.holds", pid=owner, tuple=f"{cip}:{cport} - {sip}:{sport}")
        child = msg("pic.demux.child", pid=owner, tuple=f"{cip}:{cport} ↔ {sip}:{sport}")
        parts.append(
            f'<line x1="200" y1="{mid:.0f}" x2="300" y2="{y + 11}" stroke="currentColor"/>'
            f'<rect class=child x="300" y="{y}" width="520" height="22" rx="4">'
            f'<title>{esc(holds)}</title></rect><text x="310" y="{y + 15}">{esc(child)}</text>'
        )
    caption = msg("pic.demux.caption", count=len(rows))
    return _figure(_svg(h, "".join(parts), caption), caption)


# -- marks on a time line --------------------------------------------------------------------


@dataclass(frozen=True)
class _Mark:
    t: float
    label: str
    kind: str  # the mark's class
    filled: bool = True


def _timeline(marks: Sequence[_Mark], xmax: float, guide: tuple[float, str] | None) -> str:
    h, axis = 150, 110
    span = max(xmax, 1e-3)

    def x(t: float) -> float:
        return _L + (_W - _L - _R) * max(t, 0.0) / span

    parts = [f'<line x1="{_L}" x2="{_W - _R}" y1="{axis}" y2="{axis}" stroke="currentColor"/>']
    for k in range(6):
        t = span * k / 5
        parts.append(f'<text x="{x(t):.1f}" y="{axis + 16}" text-anchor="middle">{t:.3g} s</text>')
    if guide is not None:
        gx = x(guide[0])
        parts.append(
            f'<line x1="{gx:.1f}" x2="{gx:.1f}" y1="10" y2="{axis}" stroke="currentColor" '
            f'stroke-dasharray="4 3"/><text x="{gx + 4:.1f}" y="20">{esc(guide[1])}</text>'
        )
    for k, m in enumerate(marks):
        fill = "" if m.filled else ' fill="none" stroke="currentColor"'
        label_y = axis - 12 - 15 * (k % 5)
        # Labels right of the middle end at their mark, so none runs off the picture.
        anchor = "end" if x(m.t) > _W / 2 else "start"
        parts.append(
            f'<circle class="{esc(m.kind)}" cx="{x(m.t):.1f}" cy="{axis}" r="5"{fill}>'
            f"<title>+{m.t:.3f} s: {esc(m.label)}</title></circle>"
        )
        if m.label:
            parts.append(
                f'<text x="{x(m.t):.1f}" y="{label_y}" text-anchor="{anchor}">{esc(m.label)}</text>'
            )
    return _svg(h, "".join(parts), msg("pic.timeline"))


def time_wait_picture(ev: Evidence, topo: Topology, sc: Scenario) -> str:
    """Each watch snapshot on a time line from the close's last ACK: filled while the
    client's socket is in TIME_WAIT, hollow once it is gone; a line at 2MSL."""
    _, conns = tcp(topo, ev, sc)
    series = time_wait_series(ev, sc, conns[0]) if conns else []
    if not series:
        return ""
    marks = [_Mark(t, "", "tw-on" if on else "tw-off", filled=on) for t, on in series]
    gone = next((t for t, on in series if not on), None)
    if gone is not None:
        marks.append(_Mark(gone, msg("pic.time_wait.gone", t=gone), "tw-off", filled=False))
    svg = _timeline(marks, max(t for t, _ in series), (TWO_MSL, "2MSL = 60 s"))
    caption = msg("pic.time_wait.caption")
    return _figure(svg, caption)


def reads_picture(ev: Evidence, topo: Topology, sc: Scenario) -> str:
    """The probe's read() calls and signals on its own clock, each read labelled with
    what it returned."""
    client = scenario_clients(ev, sc).get(sc.clients[0])
    result = client.result if client is not None else None
    if not isinstance(result, ProbeResult) or not result.connections:
        return ""
    marks = []
    for e in result.connections[0].events:
        if e.call == "read":
            said = f"{e.bytes}" + (f" {e.error}" if e.error else "")
            marks.append(_Mark(e.at, f"read() → {said}", "read-bad" if e.error else "read-ok"))
        elif e.call == "signal":
            marks.append(_Mark(e.at, "SIGUSR1", "signal", filled=False))
    if not marks:
        return ""
    caption = msg("pic.reads.caption")
    return _figure(_timeline(marks, max(m.t for m in marks), None), caption)
