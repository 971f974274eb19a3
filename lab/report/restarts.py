"""A scenario's server restarts as boxes left to right (:func:`restart_timeline`): the
first start, then per restart whether TIME_WAIT was met on the port, whether the new
server bound (or failed with EADDRINUSE) and with which SO_REUSEADDR. The boxes share
the charts' style sheet, ``assets/figures.css``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lab.evidence.records import TcpRecord
from lab.i18n import columns, t_or
from lab.i18n import t as msg
from lab.report.hosts import socket_snapshot
from lab.report.markup import esc, read_text
from lab.report.record import ScenarioVerdict
from lab.run.record import RestartRecord, RunRecord
from lab.spec.model import Service, Topology

_RS_W, _RS_H, _RS_GAP = 280, 150, 44

# A box of the restart timeline: (title, lines, outcome, bound).
Step = tuple[str, list[str], str, bool]


def restarts_html(
    out_dir: Path,
    run: RunRecord | None,
    sc: ScenarioVerdict,
    topology: Topology,
    conns: Sequence[TcpRecord],
) -> str:
    """The restart timeline of a scenario with ``restart`` steps, from run.json's
    ``scenarios.<name>.restarts``, each restart's snapshot (TIME_WAIT on the port when it
    started) and its log (why it could not bind)."""
    record = run.scenarios.get(sc.name) if run is not None else None
    done = (record.restarts if record is not None else None) or []
    service = next((s for s in topology.services if s.name == sc.service), None)
    if run is None or not done or service is None:
        return ""
    started = run.services.get(service.name)
    pid = started.pid if started is not None else None
    steps = [_step(out_dir, service, k, r) for k, r in enumerate(done, start=1)]
    return restart_timeline(_first_start(service, pid, conns), steps)


def _first_start(service: Service, pid: int | None, conns: Sequence[TcpRecord]) -> list[str]:
    node, port = service.node, service.port
    reuse = msg("rs.yes" if service.option("reuseaddr") else "rs.no")
    first = [
        msg("rs.first.server", program=service.program, pid=pid, node=node),
        msg("rs.first.port", port=port, reuse=reuse),
    ]
    for c in conns[:1]:
        tw = ", ".join(c.close.time_wait_by)
        side = t_or(f"side.{c.close.first_fin_by}", str(c.close.first_fin_by))
        first.append(msg("rs.first.served", conn=c.id, side=side))
        where = (tw or msg("rs.nobody")) + (f":{port}" if tw == node else "")
        first.append(msg("rs.first.time_wait", where=where))
    return first


def _step(out_dir: Path, service: Service, k: int, r: RestartRecord) -> Step:
    node, port = service.node, service.port
    waiting = _time_wait_count(out_dir, node, r.snapshot, port)
    stopped = r.stopped_status
    count = "none" if waiting is None else ("one" if waiting == 1 else "many")
    lines = [
        msg("rs.stopped", status=stopped) if stopped is not None else msg("rs.exited"),
        msg(f"rs.time_wait.{count}", node=node, port=port, n=waiting),
        msg("rs.new", pid=r.pid),
        msg("rs.expected", what=r.expect or msg("rs.to_listen")),
    ]
    title = msg("rs.title", k=k, reuse=msg("rs.yes" if r.reuseaddr else "rs.no"))
    return (title, lines, _outcome(out_dir, r), r.listening)


def _outcome(out_dir: Path, r: RestartRecord) -> str:
    """The listening socket of a restart that bound; why one that did not failed."""
    if r.listening:
        words = r.listen_socket.split()
        return msg("rs.listens", socket=" ".join(words[:1] + words[3:4]))
    log = (read_text(out_dir / r.log) or "").strip() if r.log else ""
    why = "EADDRINUSE" if "EADDRINUSE" in log else (log.splitlines() or [msg("rs.no_log")])[-1]
    return msg("rs.bind_failed", why=why, status=r.exit_status)


def _time_wait_count(out_dir: Path, node: str, snapshot: str, port: int) -> int | None:
    rows = socket_snapshot(out_dir / node / "snapshots", snapshot)
    if rows is None:
        return None
    return sum(1 for r in rows if r.state == "TIME_WAIT" and r.local.port == port)


def restart_timeline(first: Sequence[str], steps: Sequence[Step]) -> str:
    """The server's life as boxes left to right: ``first`` the lines of the first start,
    then per restart ``(title, lines, outcome, bound)`` (a bound restart listens, in
    green; one that could not bind, in red)."""
    if not steps:
        return ""
    boxes: list[Step] = [(msg("rs.started"), list(first), "", True), *steps]
    width = 20 + len(boxes) * (_RS_W + _RS_GAP)
    out = [
        f'<svg class="chart restarts" width={width} height={_RS_H + 20} '
        f'viewBox="0 0 {width} {_RS_H + 20}" role=img aria-label="{esc(msg("rs.aria"))}">',
        '<defs><marker id=rah viewBox="0 0 10 10" refX=10 refY=5 markerWidth=8 markerHeight=8 '
        'orient=auto><path d="M0,0 L10,5 L0,10 z" class=head /></marker></defs>',
    ]
    out += [_restart_box(i, box) for i, box in enumerate(boxes)]
    out.append("</svg>")
    return "<div class=scroll>" + "".join(out) + "</div>"


def _restart_box(i: int, box: Step) -> str:
    """The ``i``-th box, with the arrow from the box before it."""
    title, lines, outcome, bound = box
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
    arrow = (
        f"<line class=rsarrow x1={x - _RS_GAP + 4} y1={10 + _RS_H // 2} x2={x - 4} "
        f'y2={10 + _RS_H // 2} marker-end="url(#rah)" />'
        if i
        else ""
    )
    return (
        f'<g class="{cls}"><rect x={x} y=10 width={_RS_W} height={_RS_H} rx=8 />'
        f"<text class=rstitle x={x + 10} y=28>{esc(title)}</text>{text}{result}</g>{arrow}"
    )


def _clip(text: str, n: int = 40) -> str:
    """``text`` in at most ``n`` columns (a CJK character takes two)."""
    if columns(text) <= n:
        return text
    while columns(text) > n - 1:
        text = text[:-1]
    return text + "…"
