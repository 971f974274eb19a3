"""report.html: one self-contained page per results folder.

Inline CSS and SVG only; nothing is fetched, and the page reads the same without
JavaScript (a few lines of inline script only add a filter box). The style sheets and the
script are files of ``lab/report/assets``, inlined as they are.

The page: a header (topology, backend, verdict, timings), the topology as a picture, one
section per scenario (its checks, then its connections: a one-line summary each, opening on
a sequence diagram drawn like the course's timing figures and a packet table), UDP flows,
and per host the socket states at each snapshot phase and the servers' process trees.
Where a diagram alone shows it badly, :mod:`lab.report.figures` adds a picture: a connection
whose window closed gets its window over time (zero windows, probes, updates marked), each
service with several connections a timeline of them (connecting, queued, served, closing;
retransmitted SYNs marked), and a scenario that restarts its server the restarts in order
(TIME_WAIT met, bound or EADDRINUSE). In a diagram, a probe program's own calls (from
run.json) sit on the client's line. The header names the backend and, for ssh runs, the
machine of each node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.report.connections_html import connections_html, udp_table
from lab.report.figures import service_timeline
from lab.report.hosts import hosts_html
from lab.report.markup import asset, badge, esc, section
from lab.report.probes import probe_calls
from lab.report.restarts import restarts_html
from lab.report.scenarios import scenario_html
from lab.report.topology_svg import topology_svg
from lab.run.record import RunRecord, load_run
from lab.spec.codec import RecordError
from lab.spec.model import Topology


def render_report(
    out_dir: Path, summary: dict[str, Any], topology: Topology, connections: list[dict[str, Any]]
) -> str:
    """The whole page as one string. ``summary`` is summary.json's content (its optional
    ``udp_flows`` are shown when present); ``connections`` are
    :func:`lab.evidence.connections.connection_records`; snapshots and run.json are read from
    ``out_dir`` when they exist."""
    run = _load_run(out_dir)
    by_scenario: dict[str | None, list[dict[str, Any]]] = {}
    for conn in connections:
        by_scenario.setdefault(conn.get("scenario"), []).append(conn)
    parts = [
        _head(summary),
        _header(summary, topology, connections),
        section("Topology", "topology", topology_svg(topology, summary)),
    ]
    timelines = _timelines(topology, connections)
    if timelines:
        parts.append(section("Connections in time, per service", "timelines", timelines))
    parts += _scenarios(out_dir, summary, topology, run, by_scenario)
    parts += _others(summary, by_scenario.get(None, []))
    parts.append(section("Hosts", "hosts", hosts_html(out_dir, topology, run)))
    parts.append(f"<script>\n{asset('report.js')}</script></body></html>\n")
    return "\n".join(parts)


def _load_run(out_dir: Path) -> RunRecord | None:
    """run.json, typed; None when there is none this version can read: the page is then
    drawn from the summary and the snapshots alone."""
    try:
        return load_run(out_dir)[1]
    except RecordError:
        return None


def _head(summary: Mapping[str, Any]) -> str:
    title = f"socket-lab: {summary.get('topology', '?')}"
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>"
        f"<style>\n{asset('report.css')}\n{asset('figures.css')}</style></head><body>"
    )


def _all_scenarios(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(summary.get("scenarios", []) or [])


def _header(
    summary: Mapping[str, Any], topology: Topology, connections: Sequence[Mapping[str, Any]]
) -> str:
    scenarios = _all_scenarios(summary)
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
        f"{badge(verdict, 'PASSED', 'FAILED')}</div>"
        f"<p class=desc>{esc(topology.description)}</p>"
        f"<dl class=facts>{_facts(summary, scenarios, connections)}</dl>{error}"
        f'<nav><a href="#topology">topology</a>{nav}<a href="#hosts">hosts</a></nav></header>'
    )


def _facts(
    summary: Mapping[str, Any],
    scenarios: Sequence[Mapping[str, Any]],
    connections: Sequence[Mapping[str, Any]],
) -> str:
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
    return "".join(
        f"<dt>{esc(k)}</dt><dd>{timing_text if k == 'timings' else esc(v)}</dd>" for k, v in facts
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


def _timelines(topology: Topology, connections: Sequence[Mapping[str, Any]]) -> str:
    """A timeline per TCP service that had two connections or more."""
    out = []
    for svc in topology.services:
        conns = [c for c in connections if c.get("service") == svc.name]
        out.append(service_timeline(svc.name, svc.program, conns))
    return "".join(out)


def _scenarios(
    out_dir: Path,
    summary: Mapping[str, Any],
    topology: Topology,
    run: RunRecord | None,
    by_scenario: Mapping[str | None, list[dict[str, Any]]],
) -> list[str]:
    probes = probe_calls(run)
    out = []
    for sc in _all_scenarios(summary):
        conns = by_scenario.get(sc.get("name"), [])
        restarts = restarts_html(out_dir, run, sc, topology, conns)
        out.append(scenario_html(sc, topology, conns, probes, restarts))
    return out


def _others(summary: Mapping[str, Any], orphans: Sequence[Mapping[str, Any]]) -> list[str]:
    """The sections of what no scenario explains: TCP connections no scenario made, and
    the UDP flows."""
    out = []
    if orphans:
        out.append(
            section(
                "Other TCP connections",
                "other",
                "<p class=note>Connections in the captures that no scenario made.</p>"
                + connections_html(orphans),
            )
        )
    flows = summary.get("udp_flows") or []
    if flows:
        out.append(section("UDP flows", "udp", udp_table(flows)))
    return out
