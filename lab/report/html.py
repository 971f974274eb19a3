"""report.html: one self-contained page per results folder.

Inline CSS and SVG only; nothing is fetched, and the page reads the same without
JavaScript (a few lines of inline script only add a filter box). Every value that comes
from a file, a topology or a capture goes through :func:`esc` before it reaches the page.

The page: a header (topology, backend, verdict, timings), the topology as a picture, one
section per scenario (its checks, then its connections: a one-line summary each, opening on
a sequence diagram drawn like the course's timing figures and a packet table), UDP flows,
and per host the socket states at each snapshot phase and the servers' process trees.
Where a diagram alone shows it badly, :mod:`lab.report.figures` adds a picture: a connection
whose window closed gets its window over time (zero windows, probes, updates marked), each
service with several connections a timeline of them (connecting, queued, served, closing;
retransmitted SYNs marked), and a scenario that restarts its server the restarts in order
(TIME_WAIT met, bound or EADDRINUSE). In a diagram, window events, retransmissions, resets
and data after a FIN are highlighted and tagged, a probe program's own calls (from
run.json) sit on the client's line, and a run of segments not drawn is one "… N segments …"
line. The header names the backend and, for ssh runs, the machine of each node.
To stay usable with hundreds of connections, each connection is a closed ``<details>``
(only the first of each scenario is open) and diagrams are drawn only for the first
:data:`DIAGRAMS_PER_SCENARIO` connections of a scenario (fewer when they pass
:data:`DIAGRAM_BYTES`); the rest keep their table row.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.evidence.analysis import descendants, parse_ps, parse_sockets, states_over_time
from lab.evidence.analysis.snapshots import ProcessRow
from lab.evidence.connections import SEGMENTS_TAIL
from lab.report.figures import CSS as FIGURES_CSS
from lab.report.figures import restart_timeline, service_timeline, window_chart
from lab.spec.model import Node, Topology

PHASES = ("before", "during", "after", "final")
# Arrows for data and pure ACK segments between the handshake and the close.
DATA_ARROWS = 20
DIAGRAMS_PER_SCENARIO = 100
# And only while a scenario's connections take less than this much of the page: a
# connection with many highlighted segments draws a long diagram and packet table.
DIAGRAM_BYTES = 1_500_000
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


def esc(value: object) -> str:
    """Text safe in element content and in quoted attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


# -- page ----------------------------------------------------------------------------------------


def render_report(
    out_dir: Path, summary: dict[str, Any], topology: Topology, connections: list[dict[str, Any]]
) -> str:
    """The whole page as one string. ``summary`` is summary.json's content (its optional
    ``udp_flows`` and ``experiments`` are shown when present); ``connections`` are
    :func:`lab.evidence.connections.connection_records`; snapshots and run.json are read from
    ``out_dir`` when they exist."""
    run = _load_json(out_dir / "run.json")
    by_scenario: dict[str | None, list[dict[str, Any]]] = {}
    for conn in connections:
        by_scenario.setdefault(conn.get("scenario"), []).append(conn)
    parts = [
        _head(summary),
        _header(summary, topology, connections),
        _section("Topology", "topology", _topology_svg(topology, summary)),
    ]
    timelines = _timelines(topology, connections)
    if timelines:
        parts.append(_section("Connections in time, per service", "timelines", timelines))
    probes = _probe_calls(run)
    for group_name in ("scenarios", "experiments"):
        for sc in summary.get(group_name, []) or []:
            conns = by_scenario.get(sc.get("name"), [])
            parts.append(
                _scenario(sc, topology, conns, probes, _restarts(out_dir, run, sc, topology, conns))
            )
    orphans = by_scenario.get(None, [])
    if orphans:
        parts.append(
            _section(
                "Other TCP connections",
                "other",
                "<p class=note>Connections in the captures that no scenario made.</p>"
                + _connections(orphans),
            )
        )
    flows = summary.get("udp_flows") or []
    if flows:
        parts.append(_section("UDP flows", "udp", _udp_table(flows)))
    parts.append(_section("Hosts", "hosts", _hosts(out_dir, topology, run)))
    parts.append(_SCRIPT + "</body></html>\n")
    return "\n".join(parts)


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _section(title: str, anchor: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def _badge(passed: bool | None, yes: str = "PASS", no: str = "FAIL") -> str:
    if passed is None:
        return '<span class="badge na">n/a</span>'
    return f'<span class="badge {"ok" if passed else "bad"}">{yes if passed else no}</span>'


def _head(summary: Mapping[str, Any]) -> str:
    title = f"socket-lab: {summary.get('topology', '?')}"
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}{FIGURES_CSS}</style></head><body>"
    )


def _header(
    summary: Mapping[str, Any], topology: Topology, connections: Sequence[Mapping[str, Any]]
) -> str:
    scenarios = list(summary.get("scenarios", []) or []) + list(
        summary.get("experiments", []) or []
    )
    passed_n = sum(1 for s in scenarios if s.get("passed"))
    timings = summary.get("timings") or {}
    timing_text = ", ".join(
        f"{esc(k)} {float(v):.2f} s" for k, v in timings.items() if isinstance(v, int | float)
    )
    hs_ok = sum(1 for c in connections if c.get("handshake", {}).get("ok"))
    hosts = _node_hosts(summary)
    facts = [
        ("backend", summary.get("backend")),
        *([("hosts", ", ".join(f"{n} on {h}" for n, h in hosts.items()))] if hosts else []),
        ("run", summary.get("run_id")),
        ("started", summary.get("started")),
        ("timings", None),
        ("scenarios", f"{passed_n}/{len(scenarios)} passed"),
        ("TCP connections", f"{len(connections)} ({hs_ok} with a clean handshake)"),
    ]
    rows = "".join(
        f"<dt>{esc(k)}</dt><dd>{timing_text if k == 'timings' else esc(v)}</dd>" for k, v in facts
    )
    error = ""
    if summary.get("error"):
        error = f'<p class="error">error: {esc(summary["error"])}</p>'
    nav = "".join(
        f'<a href="#sc-{esc(s.get("name"))}" class="{"ok" if s.get("passed") else "bad"}">'
        f"{esc(s.get('name'))}</a>"
        for s in scenarios
    )
    verdict = bool(summary.get("passed"))
    return (
        f'<header class="{"ok" if verdict else "bad"}"><div class=title>'
        f"<h1>{esc(summary.get('topology', topology.name))}</h1>"
        f"{_badge(verdict, 'PASSED', 'FAILED')}</div>"
        f"<p class=desc>{esc(topology.description)}</p><dl class=facts>{rows}</dl>{error}"
        f'<nav><a href="#topology">topology</a>{nav}<a href="#hosts">hosts</a></nav></header>'
    )


def _node_hosts(summary: Mapping[str, Any]) -> dict[str, str]:
    """The machine that played each node, where the backend says (the ssh backend's
    ``node_info`` puts ``host`` in run.json's nodes)."""
    nodes = summary.get("nodes") or {}
    return {
        str(name): str(info["host"])
        for name, info in nodes.items()
        if isinstance(info, dict) and info.get("host")
    }


# -- topology picture ----------------------------------------------------------------------------

_BOX_W, _COL_W, _BAR_H = 170, 190, 14
_MAX_COLS = 6


def _node_lines(node: Node, topology: Topology, ifnames: Mapping[str, str]) -> list[str]:
    lines = []
    for iface in node.interfaces:
        name = ifnames.get(iface.network)
        lines.append(f"{iface.address}" + (f" ({name})" if name else ""))
    services = [
        f"{s.name} :{s.port}/{s.protocol}" for s in topology.services if s.node == node.name
    ]
    return lines + services


def _topology_svg(topology: Topology, summary: Mapping[str, Any]) -> str:
    """Networks as horizontal bars, hosts as boxes hanging from their network (above the
    first bar, below the others), routers and other multi-homed nodes between the bars of
    the networks they join, drawn in a different colour."""
    nets = [n.name for n in topology.networks]
    net_index = {name: i for i, name in enumerate(nets)}
    nodes_info = summary.get("nodes") or {}
    rows: list[tuple[str, Any]] = []  # ("bar", net) or ("nodes", [Node, ...])
    single = {
        i: [n for n in topology.nodes if len(n.interfaces) == 1 and net_index[n.networks[0]] == i]
        for i in range(len(nets))
    }
    multi = [n for n in topology.nodes if len(n.interfaces) != 1]
    for i, net in enumerate(nets):
        between = [n for n in multi if n.interfaces and max(net_index[x] for x in n.networks) == i]
        if i == 0:
            rows += [("nodes", chunk) for chunk in _chunks(single[0])]
        elif between:
            rows += [("nodes", chunk) for chunk in _chunks(between)]
        rows.append(("bar", net))
        if i > 0:
            rows += [("nodes", chunk) for chunk in _chunks(single[i])]
    leftover = [n for n in multi if not n.interfaces]
    rows += [("nodes", chunk) for chunk in _chunks(leftover)]

    boxes, lines, bars = [], [], []
    bar_y: dict[str, int] = {}
    centers: dict[str, tuple[int, int, int]] = {}  # node -> (x centre, top, bottom)
    y = 16
    width = 40 + _COL_W * min(_MAX_COLS, max([len(r[1]) for r in rows if r[0] == "nodes"] + [1]))
    width = max(width, 560)
    for kind, item in rows:
        if kind == "bar":
            network = topology.network(item)
            bar_y[item] = y + _BAR_H // 2
            bars.append(
                f"<rect class=net x=10 y={y} width={width - 20} height={_BAR_H} rx=7 />"
                f"<text class=netlabel x=18 y={y + _BAR_H + 14}>{esc(network.name)} "
                f"{esc(network.subnet)}</text>"
            )
            y += _BAR_H + 40
            continue
        height = 0
        for col, node in enumerate(item):
            info = nodes_info.get(node.name) or {}
            text = _node_lines(node, topology, info.get("interfaces") or {})
            if info.get("host"):
                text.insert(0, f"on {info['host']}")
            h = 30 + 15 * len(text)
            height = max(height, h)
            x = 20 + col * _COL_W
            cls = "router" if node.router else ("multi" if len(node.interfaces) > 1 else "host")
            tspans = "".join(
                f"<text class=addr x={x + 8} y={y + 38 + 15 * k}>{esc(t)}</text>"
                for k, t in enumerate(text)
            )
            tag = " (router)" if node.router else ""
            boxes.append(
                f"<g class={cls}><rect x={x} y={y} width={_BOX_W} height={h} rx=6 />"
                f"<text class=name x={x + 8} y={y + 19}>{esc(node.name)}{esc(tag)}</text>"
                f"{tspans}</g>"
            )
            centers[node.name] = (x + _BOX_W // 2, y, y + h)
        y += height + 30
    for node in topology.nodes:
        if node.name not in centers:
            continue
        cx, top, bottom = centers[node.name]
        for net in node.networks:
            by = bar_y.get(net)
            if by is None:
                continue
            y1, y2 = (bottom, by) if by > bottom else (top, by)
            lines.append(f"<line class=link x1={cx} y1={y1} x2={cx} y2={y2} />")
    svg = (
        f"<svg class=topo width={width} height={y} "
        f'viewBox="0 0 {width} {y}" role=img aria-label="topology">'
        + "".join(lines)
        + "".join(bars)
        + "".join(boxes)
        + "</svg>"
    )
    return f"<div class=scroll>{svg}</div>"


def _chunks(items: Sequence[Node]) -> list[list[Node]]:
    return [list(items[i : i + _MAX_COLS]) for i in range(0, len(items), _MAX_COLS)]


# -- scenarios -----------------------------------------------------------------------------------


def _timelines(topology: Topology, connections: Sequence[Mapping[str, Any]]) -> str:
    """A timeline per TCP service that had two connections or more."""
    out = []
    for svc in topology.services:
        conns = [c for c in connections if c.get("service") == svc.name]
        out.append(service_timeline(svc.name, svc.program, conns))
    return "".join(out)


# The probe program's calls, as drawn on the client's line of the sequence diagram.
def _call_text(event: Mapping[str, Any]) -> str | None:
    call, error = str(event.get("call")), event.get("error")
    if call == "sleep":
        return None
    if call == "recv":
        if event.get("eof"):
            return "recv() → 0 bytes: EOF"
        if event.get("line") is not None:
            line = str(event["line"])
            return f"recv() → {line[:40] + ('…' if len(line) > 40 else '')!r}"
        return f"recv() → {event.get('bytes')} bytes"
    what = f"{call}({event['bytes']} bytes)" if call == "send" and not error else f"{call}()"
    return f"{what} → {error}" if error else (f"{what} → ok" if call == "connect" else what)


def _probe_calls(run: Mapping[str, Any]) -> dict[str, list[tuple[float, str, bool]]]:
    """The calls of each probe connection in run.json, by its local address, with the
    probe's own clock (seconds from its start)."""
    out: dict[str, list[tuple[float, str, bool]]] = {}
    for sc in (run.get("scenarios") or {}).values():
        for client in (sc.get("clients") or {}).values():
            result = (client or {}).get("result") or {}
            if result.get("program") != "probe":
                continue
            for conn in result.get("connections") or []:
                calls = []
                for e in conn.get("events") or []:
                    text = _call_text(e)
                    if text is not None and isinstance(e.get("at"), int | float):
                        calls.append((float(e["at"]), text, bool(e.get("error"))))
                if isinstance(conn.get("local"), str):
                    out[conn["local"]] = calls
    return out


def _align_calls(
    conn: Mapping[str, Any], calls: Sequence[tuple[float, str, bool]]
) -> list[tuple[float, str, bool]]:
    """Calls moved onto the capture's clock: connect() returns just after the server's
    answer to the SYN (its SYN-ACK or RST), so that answer's time and the connect's are
    taken to be the same instant. An approximation, shown as ≈ on the page."""
    connect = next((at for at, text, _ in calls if text.startswith("connect(")), None)
    answer = next(
        (float(s.get("t") or 0) for s in conn.get("segments") or [] if s.get("from") == "server"),
        None,
    )
    if connect is None or answer is None:
        return []
    # Just after the answer: connect() returns once the answer is in.
    return [(at - connect + answer + 1e-6, text, failed) for at, text, failed in calls]


def _time_wait_count(out_dir: Path, node: str, snapshot: str, port: int) -> int | None:
    snap = out_dir / node / "snapshots"
    text = _read(snap / f"{snapshot}.ss.txt") or _read(snap / f"{snapshot}.netstat.txt")
    if text is None:
        return None
    return sum(1 for r in parse_sockets(text) if r.state == "TIME_WAIT" and r.local.port == port)


def _restarts(
    out_dir: Path,
    run: Mapping[str, Any],
    sc: Mapping[str, Any],
    topology: Topology,
    conns: Sequence[Mapping[str, Any]],
) -> str:
    """The restart timeline of a scenario with ``restart`` steps, from run.json's
    ``scenarios.<name>.restarts``, each restart's snapshot (TIME_WAIT on the port when it
    started) and its log (why it could not bind)."""
    done = ((run.get("scenarios") or {}).get(str(sc.get("name"))) or {}).get("restarts") or []
    service = next((s for s in topology.services if s.name == sc.get("service")), None)
    if not done or service is None:
        return ""
    node, port = service.node, service.port
    info = (run.get("services") or {}).get(service.name) or {}
    first = [
        f"{service.program} pid {info.get('pid')} on {node}",
        f"port {port}, SO_REUSEADDR {'yes' if service.option('reuseaddr') else 'no'}",
    ]
    for c in conns[:1]:
        closer = (c.get("close") or {}).get("first_fin_by")
        tw = ", ".join(str(x) for x in (c.get("close") or {}).get("time_wait_by") or [])
        first.append(f"served {c.get('id')}; first FIN by {closer}")
        first.append(f"→ TIME_WAIT on {tw or 'nobody'}" + (f":{port}" if tw == node else ""))
    steps = []
    for k, r in enumerate(done, start=1):
        if not isinstance(r, dict):
            continue
        waiting = _time_wait_count(out_dir, node, str(r.get("snapshot")), port)
        stopped = r.get("stopped_status")
        lines = [
            f"previous server stopped (exit {stopped})"
            if stopped is not None
            else "previous server had already exited",
            f"TIME_WAIT on {node}:{port}: "
            + (f"{waiting} socket{'s' * (waiting != 1)}" if waiting is not None else "no snapshot"),
            f"new server pid {r.get('pid')}",
            f"expected: {r.get('expect') or 'to listen'}",
        ]
        log = (_read(out_dir / str(r.get("log") or "")) or "").strip() if r.get("log") else ""
        if r.get("listening"):
            outcome = "listens: " + " ".join(
                str(r.get("listen_socket") or "").split()[:1]
                + str(r.get("listen_socket") or "").split()[3:4]
            )
        else:
            why = "EADDRINUSE" if "EADDRINUSE" in log else (log.splitlines() or ["no log"])[-1]
            outcome = f"bind failed: {why}, exit {r.get('exit_status')}"
        title = f"restart {k}: SO_REUSEADDR {'yes' if r.get('reuseaddr') else 'no'}"
        steps.append((title, lines, outcome, bool(r.get("listening"))))
    return restart_timeline(first, steps)


def _scenario(
    sc: Mapping[str, Any],
    topology: Topology,
    conns: Sequence[dict[str, Any]],
    probes: Mapping[str, Sequence[tuple[float, str, bool]]] | None = None,
    restarts: str = "",
) -> str:
    name = str(sc.get("name"))
    service_name = sc.get("service")
    service = next((s for s in topology.services if s.name == service_name), None)
    scenario = next((s for s in topology.scenarios if s.name == name), None)
    what = ""
    if service is not None:
        what = (
            f"<p class=what><b>{esc(service.program)}</b> on <b>{esc(service.node)}</b> port "
            f"{esc(service.port)}/{esc(service.protocol)}"
        )
        if scenario is not None and scenario.probe is not None:
            what += (
                f"; clients {esc(', '.join(scenario.clients))}, probe {esc(scenario.probe)} "
                f"to port {esc(topology.scenario_port(scenario))}, expect error "
                f"{esc(scenario.expect_error or 'none')}"
            )
        elif scenario is not None:
            what += (
                f"; clients {esc(', '.join(scenario.clients))} × {esc(scenario.concurrency)}, "
                f"send {esc(list(scenario.send))}, expect {esc(list(scenario.expect))}"
            )
        what += "</p>"
    checks = "".join(
        f'<tr class="{"ok" if c.get("passed") else "bad"}"><td>{_badge(bool(c.get("passed")))}'
        f"</td><td class=claim>{esc(c.get('name'))}</td><td>{esc(c.get('detail'))}</td></tr>"
        for c in sc.get("checks", []) or []
    )
    body = (
        f"{what}<table class=checks><thead><tr><th></th><th>claim</th><th>evidence</th></tr>"
        f"</thead><tbody>{checks}</tbody></table>"
    )
    if restarts:
        body += "<h3>The server's restarts</h3>" + restarts
    if conns:
        body += f"<h3>TCP connections ({len(conns)})</h3>" + _connections(conns, probes or {})
    passed = bool(sc.get("passed"))
    return (
        f'<section id="sc-{esc(name)}" class="scenario {"ok" if passed else "bad"}">'
        f"<h2>{_badge(passed)} {esc(name)}</h2>{body}</section>"
    )


def _connections(
    conns: Sequence[Mapping[str, Any]],
    probes: Mapping[str, Sequence[tuple[float, str, bool]]] | None = None,
) -> str:
    head = (
        "<div class=connhead><span>id</span><span>client → server</span><span>handshake</span>"
        "<span>close</span><span>first FIN</span><span>TIME_WAIT</span><span>segments</span></div>"
    )
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
        more = (
            f"<p class=note>Diagrams are drawn for the first {drawn} "
            f"connections; every connection's numbers are in summary.json.</p>"
        )
    return (
        "<input class=filter hidden type=search "
        'placeholder="filter connections (host, port, kind)">'
        f"<div class=conns>{head}{''.join(items)}</div>{more}"
    )


def _end(side: Mapping[str, Any]) -> str:
    node = side.get("node") or side.get("ip")
    return f"{node}:{side.get('port')}"


def _local(conn: Mapping[str, Any]) -> str:
    client = conn.get("client") or {}
    return f"{client.get('ip')}:{client.get('port')}"


def _connection(
    conn: Mapping[str, Any],
    open_: bool,
    diagram: bool,
    calls: Sequence[tuple[float, str, bool]] = (),
) -> str:
    hs = conn.get("handshake") or {}
    close = conn.get("close") or {}
    ok = bool(hs.get("ok"))
    summary_row = (
        f"<summary class=connrow><span class=id>{esc(conn.get('id'))}</span>"
        f"<span>{esc(_end(conn.get('client') or {}))} → {esc(_end(conn.get('server') or {}))}"
        f"</span><span>{_badge(ok, 'ok', 'bad')}</span><span>{esc(close.get('kind'))}</span>"
        f"<span>{esc(close.get('first_fin_by') or '-')}</span>"
        f"<span>{esc(', '.join(str(x) for x in close.get('time_wait_by') or []) or '-')}</span>"
        f"<span>{esc(conn.get('segment_count'))}</span></summary>"
    )
    inner = _facts(conn)
    if diagram:
        aligned = _align_calls(conn, calls)
        inner += window_chart(conn) + _sequence_svg(conn, aligned) + _packet_table(conn)
    return f"<details class=conn{' open' if open_ else ''}>{summary_row}{inner}</details>"


def _facts(conn: Mapping[str, Any]) -> str:
    hs = conn.get("handshake") or {}
    close = conn.get("close") or {}
    client, server = conn.get("client") or {}, conn.get("server") or {}
    mss, ws, win = hs.get("mss") or {}, hs.get("wscale") or {}, hs.get("windows") or {}
    path = conn.get("path")
    items = [
        f"handshake: {esc(hs.get('reason'))}",
        (
            f"ISN client ({esc(client.get('ip'))}:{esc(client.get('port'))}) = "
            f"<b>{esc(hs.get('client_isn'))}</b>, server ({esc(server.get('ip'))}:"
            f"{esc(server.get('port'))}) = <b>{esc(hs.get('server_isn'))}</b>; "
            "seq/ack in the diagram are relative to these"
        ),
        (
            f"MSS {esc(mss.get('client'))} / {esc(mss.get('server'))}, window scale "
            f"{esc(ws.get('client'))} / {esc(ws.get('server'))}, SYN windows "
            f"{esc(win.get('client'))} / {esc(win.get('server'))} (client / server)"
        ),
        (
            f"close: {esc(close.get('kind'))}; first FIN by {esc(close.get('first_fin_by'))}; "
            f"TIME_WAIT on {esc(', '.join(str(x) for x in close.get('time_wait_by') or []))}"
            + (f"; reset by {esc(close.get('reset_by'))}" if close.get("reset_by") else "")
        ),
        (
            f"evidence {esc(conn.get('evidence'))}; seen in "
            f"{esc(', '.join(conn.get('seen_in') or []))}"
        ),
    ]
    if path:
        items.append(
            f"path: <b>{esc(path.get('summary'))}</b> "
            f"({esc(' vs '.join(path.get('captures') or []))})"
        )
    if conn.get("retransmissions"):
        items.append(f"{esc(conn.get('retransmissions'))} retransmissions")
    if conn.get("syn_retransmissions"):
        items.append(
            f"<b>SYN sent {int(conn['syn_retransmissions']) + 1} times</b> (same ISN): "
            "retransmitted until the server answered"
        )
    if conn.get("zero_windows") or conn.get("zero_window_probes"):
        items.append(
            f"window: <b>{esc(conn.get('zero_windows'))}</b> zero-window segments, "
            f"<b>{esc(conn.get('zero_window_probes'))}</b> zero-window probes, "
            f"<b>{esc(conn.get('window_updates'))}</b> window updates"
        )
    return "<ul class=facts>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


# -- sequence diagram ------------------------------------------------------------------------------

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


def _sequence_svg(conn: Mapping[str, Any], calls: Sequence[tuple[float, str, bool]] = ()) -> str:
    """The connection drawn like the course's timing figures. Highlighted segments (see
    :func:`_tags`) get a band and a tag; a run of segments not drawn becomes one "… N
    segments …" line; ``calls`` (time, text, failed) are the client program's own calls,
    drawn on the client's line in time order."""
    tags = _tags(conn)
    rows: list[tuple[str, Any]] = []
    pending = sorted(calls)
    last_pos = -1
    for pos, seg in _shown(conn, tags):
        t = float(seg.get("t") or 0)
        while pending and pending[0][0] < t:
            rows.append(("call", pending.pop(0)))
        if pos > last_pos + 1:
            rows.append(("gap", pos - last_pos - 1))
        rows.append(("seg", seg))
        last_pos = pos
    total = int(conn.get("segment_count") or last_pos + 1)
    if total > last_pos + 1:
        rows.append(("gap", total - last_pos - 1))
    rows += [("call", c) for c in pending]
    client, server = conn.get("client") or {}, conn.get("server") or {}
    height = 70 + _STEP * len(rows) + 20
    out = [
        f"<svg class=seq width={_SEQ_W} height={height} "
        f'viewBox="0 0 {_SEQ_W} {height}" role=img aria-label="sequence diagram">'
        '<defs><marker id=ah viewBox="0 0 10 10" refX=10 refY=5 markerWidth=7 markerHeight=7 '
        'orient=auto-start-reverse><path d="M0,0 L10,5 L0,10 z" class=head /></marker></defs>'
    ]
    for x, side, role in ((_LEFT, client, "client"), (_RIGHT, server, "server")):
        out.append(
            f"<rect class=life x={x - 85} y=6 width=170 height=40 rx=5 />"
            f"<text class=lifename x={x} y=23>{esc(side.get('node') or role)} ({role})</text>"
            f"<text class=lifeaddr x={x} y=39>{esc(side.get('ip'))}:{esc(side.get('port'))}</text>"
            f"<line class=lifeline x1={x} y1=46 x2={x} y2={height - 6} />"
        )
    y = 70
    for kind, item in rows:
        if kind == "gap":
            out.append(
                f"<text class=more x={(_LEFT + _RIGHT) // 2} y={y + 12}>… {item} segment"
                f"{'s' if item != 1 else ''} …<title>not drawn; the packet table has the first "
                "and last ones and every highlighted one</title></text>"
            )
        elif kind == "call":
            out.append(_call_row(item, y))
        else:
            out.append(_arrow(item, y, tags.get(int(item.get("index") or 0), [])))
        y += _STEP
    out.append("</svg>")
    return "<div class=scroll>" + "".join(out) + "</div>"


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


def _call_row(call: tuple[float, str, bool], y: int) -> str:
    t, text, failed = call
    width = 12 + 7 * len(text)
    return (
        f'<g class="call{" err" if failed else ""}"><rect x={_LEFT - 6} y={y - 2} width=12 '
        f"height=22 rx=2 /><rect class=callbox x={_LEFT + 12} y={y} width={width} height=18 "
        f"rx=9 /><text class=calltext x={_LEFT + 18} y={y + 13}>{esc(text)}</text>"
        f"<text class=time x=8 y={y + 12}>≈+{t:.3f}s</text></g>"
    )


def _packet_table(conn: Mapping[str, Any]) -> str:
    rows = []
    for s in conn.get("segments") or []:
        direction = "client → server" if s.get("from") == "client" else "server → client"
        opts = s.get("options") or {}
        opt_text = " ".join(
            f"{k}={','.join(str(x) for x in v) if isinstance(v, list) else v}"
            for k, v in opts.items()
        )
        rows.append(
            f"<tr><td>{esc(s.get('index'))}</td><td>{float(s.get('t') or 0):.6f}</td>"
            f"<td>{direction}</td><td>{esc(' '.join(s.get('flags') or []))}</td>"
            f"<td>{esc(s.get('seq'))}</td><td>{esc(s.get('ack'))}</td><td>{esc(s.get('len'))}</td>"
            f"<td>{esc(s.get('win'))}</td><td>{esc(s.get('win_bytes'))}</td>"
            f"<td>{esc(opt_text)}</td><td>{esc(s.get('ttl'))}</td>"
            f"<td class=payload>{esc(s.get('payload'))}</td></tr>"
        )
    omitted = int(conn.get("segments_omitted") or 0)
    note = f"<p class=note>{omitted} segments in the middle are left out.</p>" if omitted else ""
    return (
        f"<details class=packets><summary>packet table ({len(rows)} segments)</summary>"
        "<table class=pkts><thead><tr><th>#</th><th>time (s)</th><th>direction</th><th>flags</th>"
        "<th>seq</th><th>ack</th><th>len</th><th>win</th><th>win bytes</th><th>options</th>"
        f"<th>TTL</th><th>payload</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"{note}</details>"
    )


# -- UDP --------------------------------------------------------------------------------


def _udp_table(flows: Iterable[Mapping[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{esc(f.get('id'))}</td><td>{esc(f.get('scenario'))}</td>"
        f"<td>{esc(_end(f.get('client') or {}))} → {esc(_end(f.get('server') or {}))}</td>"
        f"<td>{esc((f.get('datagrams') or {}).get('client'))} / "
        f"{esc((f.get('datagrams') or {}).get('server'))}</td>"
        f"<td>{esc(', '.join(str(x) for x in f.get('sizes') or []))}</td>"
        f"<td>{esc(', '.join(f.get('seen_in') or []))}</td></tr>"
        for f in flows
    )
    return (
        "<p class=note>UDP has no handshake and no close: each flow is just datagrams.</p>"
        "<table class=pkts><thead><tr><th>id</th><th>scenario</th><th>client → server</th>"
        "<th>datagrams c/s</th><th>sizes</th><th>seen in</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


# -- hosts: socket states and process trees --------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _hosts(out_dir: Path, topology: Topology, run: Mapping[str, Any]) -> str:
    parts = []
    for node in topology.nodes:
        snap_dir = out_dir / node.name / "snapshots"
        states = _states_table(snap_dir, _ports_of(node, topology))
        procs = _process_trees(snap_dir, node, run)
        if not states and not procs:
            continue
        parts.append(f"<div class=host><h3>{esc(node.name)}</h3>{states}{procs}</div>")
    return "".join(parts) or "<p class=note>No snapshots in this folder.</p>"


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


def _states_table(snap_dir: Path, ports: Sequence[tuple[int, str]]) -> str:
    snaps = {}
    for phase in PHASES:
        text = _read(snap_dir / f"{phase}.ss.txt") or _read(snap_dir / f"{phase}.netstat.txt")
        if text is not None:
            snaps[phase] = parse_sockets(text)
    if not snaps or not ports:
        return ""
    tables = []
    for port, names in ports:
        over = states_over_time(snaps, port)
        seen = [s for s in STATE_ORDER if any(over[p].get(s) for p in over)]
        seen += sorted({s for p in over for s in over[p]} - set(STATE_ORDER))
        if not seen:
            cells = "<tr><td colspan=5 class=note>no sockets on this port</td></tr>"
            tables.append(
                f"<table class=states><caption>port {port} ({esc(names)})</caption>{cells}</table>"
            )
            continue
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
            body += f"<tr><th>{esc(phase)}</th>{cells}</tr>"
        tables.append(
            f"<table class=states><caption>port {port} ({esc(names)}): sockets per state"
            f"</caption><thead><tr><th>phase</th>{head}</tr></thead><tbody>{body}</tbody></table>"
        )
    return "<div class=statewrap>" + "".join(tables) + "</div>"


def _process_trees(snap_dir: Path, node: Node, run: Mapping[str, Any]) -> str:
    services = [
        (name, info)
        for name, info in (run.get("services") or {}).items()
        if isinstance(info, dict) and info.get("node") == node.name and info.get("pid")
    ]
    if not services:
        return ""
    out = []
    for phase in ("during", "after"):
        text = _read(snap_dir / f"{phase}.ps.txt")
        if text is None:
            continue
        rows = parse_ps(text)
        trees = "".join(_tree(rows, name, info) for name, info in services)
        out.append(f"<div class=ptree><h4>processes at '{esc(phase)}'</h4>{trees}</div>")
    return "<div class=ptrees>" + "".join(out) + "</div>" if out else ""


def _proc_line(row: ProcessRow) -> str:
    cls = "zombie" if row.zombie else "proc"
    threads = f", {row.nlwp} threads" if row.nlwp > 1 else ""
    zombie = " <b>zombie</b>" if row.zombie else ""
    return (
        f"<span class={cls}>pid {row.pid} [{esc(row.stat)}{threads}]{zombie} "
        f"<code>{esc(row.args)}</code></span>"
    )


def _tree(rows: Sequence[ProcessRow], name: str, info: Mapping[str, Any]) -> str:
    pid = int(info["pid"])
    me = next((r for r in rows if r.pid == pid), None)
    if me is None:
        return f"<p class=note>{esc(name)}: pid {pid} not running</p>"
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
    tail = f"<p class=note>… {more} more processes</p>" if more > 0 else ""
    count = f"{len(kids)} descendants, {dead} zombies"
    return (
        f"<div class=tree><p><b>{esc(name)}</b> ({count})</p>"
        f"<ul><li>{_proc_line(me)}{branch(pid)}</li></ul>{tail}</div>"
    )


_CSS = """
:root{--ok:#1a7f37;--okbg:#dafbe1;--bad:#cf222e;--badbg:#ffebe9;--ink:#1f2328;--mute:#59636e;
--line:#d1d9e0;--accent:#0969da;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI","Noto Sans",sans-serif;
color:var(--ink);background:#fff}
header{padding:20px 32px;border-bottom:4px solid var(--ok);background:var(--bg)}
header.bad{border-bottom-color:var(--bad)}
.title{display:flex;align-items:center;gap:14px}
h1{margin:0;font-size:26px}
h2{font-size:20px;margin:0 0 10px;display:flex;align-items:center;gap:10px}
h3{font-size:16px;margin:18px 0 8px}
h4{font-size:14px;margin:6px 0}
section{padding:18px 32px;border-bottom:1px solid var(--line)}
section.scenario{border-left:6px solid var(--ok)}
section.scenario.bad{border-left-color:var(--bad);background:#fffafa}
.desc{color:var(--mute);max-width:980px;margin:6px 0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
dl.facts dt{color:var(--mute)}dl.facts dd{margin:0;font-variant-numeric:tabular-nums}
nav{display:flex;flex-wrap:wrap;gap:8px;margin-top:8px}
nav a{padding:2px 10px;border-radius:12px;border:1px solid var(--line);text-decoration:none;
color:var(--ink);background:#fff}
nav a.ok{border-color:var(--ok)}nav a.bad{border-color:var(--bad);color:var(--bad)}
.badge{display:inline-block;padding:1px 8px;border-radius:4px;font-size:12px;font-weight:700;
letter-spacing:.04em;color:#fff;background:var(--ok)}
.badge.bad{background:var(--bad)}.badge.na{background:var(--mute)}
.error{color:var(--bad);font-weight:600}
.note{color:var(--mute);font-size:13px}
.what{margin:4px 0 10px}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
thead th{background:var(--bg)}
table.checks{min-width:720px}
table.checks tr.bad td{background:var(--badbg)}
td.claim{font-weight:600}
.conns{border:1px solid var(--line);border-radius:6px;overflow:hidden}
.connhead,.connrow{display:grid;
grid-template-columns:70px minmax(260px,2fr) 80px 100px 110px 110px 80px;gap:8px;
padding:4px 10px;font-size:13px}
.connhead{background:var(--bg);font-weight:600;color:var(--mute)}
details.conn{border-top:1px solid var(--line)}
.connrow{cursor:pointer;list-style:none;font-variant-numeric:tabular-nums}
.connrow::-webkit-details-marker{display:none}
details.conn[open]>.connrow{background:#eef5ff}
details.conn>:not(summary){margin-left:18px}
.connrow .id{font-family:ui-monospace,Menlo,Consolas,monospace}
ul.facts{margin:6px 0;padding-left:18px;font-size:13px}
.scroll{overflow-x:auto}
svg text{font-family:ui-monospace,Menlo,Consolas,monospace}
svg.seq{background:#fff;margin:6px 0}
.life{fill:#eef5ff;stroke:var(--accent)}
.lifename{font-weight:700;font-size:13px;text-anchor:middle;font-family:system-ui,sans-serif!important}
.lifeaddr{font-size:11px;text-anchor:middle;fill:var(--mute)}
.lifeline{stroke:#8c959f;stroke-width:2;stroke-dasharray:4 3}
.arrow line{stroke:#57606a;stroke-width:1.6}
.arrow.syn line{stroke:var(--accent);stroke-width:2}
.arrow.fin line{stroke:#bc4c00;stroke-width:2}
.arrow.rst line{stroke:var(--bad);stroke-width:2}
.arrow.data line{stroke:#1a7f37}
.head{fill:#57606a}
.label{font-size:12px;text-anchor:middle;paint-order:stroke;stroke:#fff;stroke-width:4px}
.arrow.syn .label{fill:var(--accent);font-weight:700}.arrow.fin .label{fill:#bc4c00;font-weight:700}
.arrow.rst .label{fill:var(--bad);font-weight:700}
.time{font-size:10px;fill:var(--mute)}.idx{font-size:10px;fill:var(--mute);text-anchor:end}
.more{font-size:12px;text-anchor:middle;fill:var(--mute);font-style:italic}
.band{fill:#fff8c5}.hl-zw .band,.hl-rst .band{fill:#ffebe9}.hl-update .band{fill:#dafbe1}
.hl-probe .band{fill:#fff1e5}
.tag{font:700 11px system-ui,sans-serif!important;fill:#9a6700}
.hl-zw .tag,.hl-rst .tag{fill:var(--bad)}.hl-update .tag{fill:var(--ok)}.hl-probe .tag{fill:#bc4c00}
.arrow.hl-probe line{stroke:#bc4c00;stroke-width:2.4;stroke-dasharray:6 3}
.arrow.hl-zw line{stroke:var(--bad);stroke-width:2.4}
.arrow.hl-update line{stroke:var(--ok);stroke-width:2.4}
.call rect{fill:#57606a}.call .callbox{fill:#eef5ff;stroke:var(--accent)}
.call.err rect{fill:var(--bad)}.call.err .callbox{fill:#ffebe9;stroke:var(--bad)}
.calltext{font-size:12px;fill:var(--ink)}.call.err .calltext{fill:var(--bad);font-weight:700}
table.pkts td{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
td.payload{max-width:260px;overflow-wrap:anywhere}
details.packets{margin:4px 0 12px}details.packets>summary{cursor:pointer;color:var(--accent)}
svg.topo{background:var(--bg);border-radius:8px}
.net{fill:#8c959f}.netlabel{font-size:12px;fill:var(--ink);font-weight:700}
.link{stroke:#8c959f;stroke-width:2}
.host rect{fill:#fff;stroke:var(--accent);stroke-width:1.5}
.router rect{fill:#fff8c5;stroke:#9a6700;stroke-width:2.5}
.multi rect{fill:#fbefff;stroke:#8250df;stroke-width:2}
.name{font-weight:700;font-size:13px;font-family:system-ui,sans-serif!important}
.addr{font-size:11px;fill:var(--ink)}
.host{display:block;margin-bottom:14px}
div.host{border:1px solid var(--line);border-radius:8px;padding:6px 14px 10px;margin:10px 0}
.statewrap,.ptrees{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
table.states caption{caption-side:top;text-align:left;font-size:13px;font-weight:600;padding:4px 0}
table.states td{text-align:center;min-width:44px;font-variant-numeric:tabular-nums}
.ptree ul{margin:2px 0;padding-left:18px;font-size:12px}
.ptree{min-width:420px;max-width:100%}
.tree p{margin:4px 0;font-size:13px}
.zombie{color:var(--bad)}
code{font-size:12px;color:var(--mute)}
input.filter{margin:0 0 6px;padding:4px 8px;width:320px;border:1px solid var(--line);
border-radius:6px}
"""

# Optional: a filter box per connection list. The page is complete without it.
_SCRIPT = """<script>
document.querySelectorAll('input.filter').forEach(function(box){
  box.hidden=false;
  var list=box.nextElementSibling;
  box.addEventListener('input',function(){
    var q=box.value.toLowerCase();
    list.querySelectorAll('details.conn').forEach(function(d){
      var t=d.querySelector('summary').textContent.toLowerCase();
      d.style.display=(!q||t.indexOf(q)>=0)?'':'none';
    });
  });
});
</script>"""
