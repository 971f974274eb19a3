"""Per host: the sockets on the service ports in each state at each snapshot phase, and
the servers' process trees (children, threads, zombies) while and after they ran."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.evidence.analysis import descendants, parse_ps, parse_sockets, states_over_time
from lab.evidence.analysis.snapshots import ProcessRow, SocketRow
from lab.i18n import t, t_or
from lab.report.markup import esc, read_text
from lab.run.record import RunRecord
from lab.spec.model import Node, Topology

PHASES = ("before", "during", "after", "final")
PROCESS_ROWS = 40
STATE_ORDER = (
    "LISTEN",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "CLOSE_WAIT",
    "CLOSING",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "UNCONN",
)


def socket_snapshot(snap_dir: Path, phase: str) -> list[SocketRow] | None:
    """The sockets at a snapshot, from ss's output or, where ss was missing, netstat's."""
    text = read_text(snap_dir / f"{phase}.ss.txt") or read_text(snap_dir / f"{phase}.netstat.txt")
    return None if text is None else parse_sockets(text)


def hosts_html(out_dir: Path, topology: Topology, run: RunRecord | None) -> str:
    parts = []
    for node in topology.nodes:
        snap_dir = out_dir / node.name / "snapshots"
        states = _states_table(snap_dir, _ports_of(node, topology), _phases(run))
        procs = _process_trees(snap_dir, node, run)
        if not states and not procs:
            continue
        parts.append(f"<div class=host><h3>{esc(node.name)}</h3>{states}{procs}</div>")
    return "".join(parts) or f"<p class=note>{esc(t('hosts.none'))}</p>"


def _ports_of(node: Node, topology: Topology) -> list[tuple[int, str]]:
    """The service ports whose sockets matter on a node: those it serves and those its
    scenarios connect to."""
    ports: dict[int, list[str]] = {}
    for svc in topology.services:
        used = svc.node == node.name or any(
            sc.service == svc.name and node.name in sc.clients for sc in topology.scenarios
        )
        if used:
            ports.setdefault(svc.port, []).append(svc.name)
    return [(p, "/".join(names)) for p, names in sorted(ports.items())]


def _phases(run: RunRecord | None) -> Sequence[str]:
    """The snapshots in the order they were taken: a live lab's hand snapshots among the
    run's own (a restart's snapshot, of one node only, shows where that node has it)."""
    if run is None or not run.phases:
        return PHASES
    return list(dict.fromkeys([*run.phases, *PHASES]))  # a live lab takes 'after' per scenario


def _states_table(
    snap_dir: Path, ports: Sequence[tuple[int, str]], phases: Sequence[str] = PHASES
) -> str:
    snaps = {}
    for phase in phases:
        rows = socket_snapshot(snap_dir, phase)
        if rows is not None:
            snaps[phase] = rows
    if not snaps or not ports:
        return ""
    tables = [_port_states(states_over_time(snaps, port), port, names) for port, names in ports]
    return "<div class=statewrap>" + "".join(tables) + "</div>"


def _port_states(over: Mapping[str, Mapping[str, int]], port: int, names: str) -> str:
    """Phases down, states across (in the order a connection goes through them), each
    cell shaded by its count."""
    seen = [s for s in STATE_ORDER if any(over[p].get(s) for p in over)]
    seen += sorted({s for p in over for s in over[p]} - set(STATE_ORDER))
    if not seen:
        cells = f"<tr><td colspan=5 class=note>{esc(t('hosts.no_sockets'))}</td></tr>"
        caption = esc(t("hosts.port", port=port, names=names))
        return f"<table class=states><caption>{caption}</caption>{cells}</table>"
    head = "".join(f"<th>{esc(s)}</th>" for s in seen)
    top = max(max(c.values(), default=0) for c in over.values()) or 1
    body = ""
    for phase, counts in over.items():
        cells = ""
        for s in seen:
            n = counts.get(s, 0)
            alpha = 0.12 + 0.6 * n / top if n else 0
            style = f' style="background:rgba(9,105,218,{alpha:.2f})"' if n else ""
            cells += f"<td{style}>{n or ''}</td>"
        body += f"<tr>{_phase_head(phase)}{cells}</tr>"
    caption = esc(t("hosts.port_states", port=port, names=names))
    return (
        f"<table class=states><caption>{caption}</caption><thead><tr>"
        f"<th>{esc(t('hosts.phase'))}</th>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _phase_head(phase: str) -> str:
    """A snapshot phase in the current language, its own name (the files') in the title."""
    label = t_or(f"snap.phase.{phase}", phase)
    title = f' title="{esc(phase)}"' if label != phase else ""
    return f"<th{title}>{esc(label)}</th>"


def _process_trees(snap_dir: Path, node: Node, run: RunRecord | None) -> str:
    services = [
        (name, info.pid)
        for name, info in (run.services.items() if run is not None else ())
        if info.node == node.name and info.pid
    ]
    if not services:
        return ""
    out = []
    for phase in ("during", "after"):
        text = read_text(snap_dir / f"{phase}.ps.txt")
        if text is None:
            continue
        rows = parse_ps(text)
        trees = "".join(_tree(rows, name, pid) for name, pid in services)
        label = t_or(f"snap.phase.{phase}", phase)
        named = label if label == phase else t("snap.phase.named", label=label, phase=phase)
        head = t("hosts.processes_at", phase=esc(named))
        out.append(f"<div class=ptree><h4>{head}</h4>{trees}</div>")
    return "<div class=ptrees>" + "".join(out) + "</div>" if out else ""


def _proc_line(row: ProcessRow) -> str:
    cls = "zombie" if row.zombie else "proc"
    threads = t("hosts.threads", n=row.nlwp) if row.nlwp > 1 else ""
    zombie = f" <b>{esc(t('hosts.zombie'))}</b>" if row.zombie else ""
    return (
        f"<span class={cls}>pid {row.pid} [{esc(row.stat)}{threads}]{zombie} "
        f"<code>{esc(row.args)}</code></span>"
    )


def _tree(rows: Sequence[ProcessRow], name: str, pid: int) -> str:
    me = next((r for r in rows if r.pid == pid), None)
    if me is None:
        return f"<p class=note>{esc(t('hosts.not_running', name=name, pid=pid))}</p>"
    kids = descendants(rows, pid)
    by_parent: dict[int, list[ProcessRow]] = {}
    for r in kids:
        by_parent.setdefault(r.ppid, []).append(r)
    budget = [PROCESS_ROWS]

    def branch(parent: int) -> str:
        items = []
        for r in by_parent.get(parent, []):
            if budget[0] <= 0:
                break
            budget[0] -= 1
            items.append(f"<li>{_proc_line(r)}{branch(r.pid)}</li>")
        return f"<ul>{''.join(items)}</ul>" if items else ""

    dead = sum(1 for r in kids if r.zombie)
    more = len(kids) - (PROCESS_ROWS - budget[0])
    tail = f"<p class=note>{esc(t('hosts.more', n=more))}</p>" if more > 0 else ""
    count = esc(t("hosts.descendants", n=len(kids), dead=dead))
    return (
        f"<div class=tree><p><b>{esc(name)}</b> ({count})</p>"
        f"<ul><li>{_proc_line(me)}{branch(pid)}</li></ul>{tail}</div>"
    )
