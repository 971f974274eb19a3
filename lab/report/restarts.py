"""A scenario's server restarts, as the boxes of :func:`lab.report.figures.restart_timeline`:
the first start, then per restart whether TIME_WAIT was met on the port, whether the new
server bound (or failed with EADDRINUSE) and with which SO_REUSEADDR."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.report.figures import restart_timeline
from lab.report.hosts import socket_snapshot
from lab.report.markup import read_text
from lab.run.record import RestartRecord, RunRecord
from lab.spec.model import Service, Topology

# A restart box: (title, lines, outcome, bound).
Step = tuple[str, list[str], str, bool]


def restarts_html(
    out_dir: Path,
    run: RunRecord | None,
    sc: Mapping[str, Any],
    topology: Topology,
    conns: Sequence[Mapping[str, Any]],
) -> str:
    """The restart timeline of a scenario with ``restart`` steps, from run.json's
    ``scenarios.<name>.restarts``, each restart's snapshot (TIME_WAIT on the port when it
    started) and its log (why it could not bind)."""
    record = run.scenarios.get(str(sc.get("name"))) if run is not None else None
    done = (record.restarts if record is not None else None) or []
    service = next((s for s in topology.services if s.name == sc.get("service")), None)
    if run is None or not done or service is None:
        return ""
    started = run.services.get(service.name)
    pid = started.pid if started is not None else None
    steps = [_step(out_dir, service, k, r) for k, r in enumerate(done, start=1)]
    return restart_timeline(_first_start(service, pid, conns), steps)


def _first_start(
    service: Service, pid: int | None, conns: Sequence[Mapping[str, Any]]
) -> list[str]:
    node, port = service.node, service.port
    first = [
        f"{service.program} pid {pid} on {node}",
        f"port {port}, SO_REUSEADDR {'yes' if service.option('reuseaddr') else 'no'}",
    ]
    for c in conns[:1]:
        closer = (c.get("close") or {}).get("first_fin_by")
        tw = ", ".join(str(x) for x in (c.get("close") or {}).get("time_wait_by") or [])
        first.append(f"served {c.get('id')}; first FIN by {closer}")
        first.append(f"→ TIME_WAIT on {tw or 'nobody'}" + (f":{port}" if tw == node else ""))
    return first


def _step(out_dir: Path, service: Service, k: int, r: RestartRecord) -> Step:
    node, port = service.node, service.port
    waiting = _time_wait_count(out_dir, node, r.snapshot, port)
    stopped = r.stopped_status
    lines = [
        f"previous server stopped (exit {stopped})"
        if stopped is not None
        else "previous server had already exited",
        f"TIME_WAIT on {node}:{port}: "
        + (f"{waiting} socket{'s' * (waiting != 1)}" if waiting is not None else "no snapshot"),
        f"new server pid {r.pid}",
        f"expected: {r.expect or 'to listen'}",
    ]
    title = f"restart {k}: SO_REUSEADDR {'yes' if r.reuseaddr else 'no'}"
    return (title, lines, _outcome(out_dir, r), r.listening)


def _outcome(out_dir: Path, r: RestartRecord) -> str:
    """The listening socket of a restart that bound; why one that did not failed."""
    if r.listening:
        words = r.listen_socket.split()
        return "listens: " + " ".join(words[:1] + words[3:4])
    log = (read_text(out_dir / r.log) or "").strip() if r.log else ""
    why = "EADDRINUSE" if "EADDRINUSE" in log else (log.splitlines() or ["no log"])[-1]
    return f"bind failed: {why}, exit {r.exit_status}"


def _time_wait_count(out_dir: Path, node: str, snapshot: str, port: int) -> int | None:
    rows = socket_snapshot(out_dir / node / "snapshots", snapshot)
    if rows is None:
        return None
    return sum(1 for r in rows if r.state == "TIME_WAIT" and r.local.port == port)
