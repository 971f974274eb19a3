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

from lab.errors import READ_BACK
from lab.evidence.folder import Evidence
from lab.evidence.records import TcpRecord, UdpRecord
from lab.i18n import current_lang, reread, t, t_or, translated, using
from lab.report.claim_pictures import claim_pictures
from lab.report.connections_html import connections_html, udp_table
from lab.report.figures import service_timeline
from lab.report.hosts import hosts_html
from lab.report.markup import asset, badge, esc, section
from lab.report.probes import probe_calls
from lab.report.record import Summary
from lab.report.restarts import restarts_html
from lab.report.scenarios import scenario_html
from lab.report.topology_svg import topology_svg
from lab.run.record import RunRecord, load_run
from lab.spec.codec import RecordError
from lab.spec.model import Topology


def render_report(
    out_dir: Path,
    summary: Summary,
    topology: Topology,
    connections: Sequence[TcpRecord] | None = None,
    lang: str | None = None,
) -> str:
    """The whole page as one string, in ``lang`` (default: the current language).
    ``connections`` are the TCP connections drawn, the summary's own unless given;
    snapshots and run.json are read from ``out_dir`` when they exist."""
    with using(lang or current_lang()):
        return _page(out_dir, summary, topology, connections)


def _page(
    out_dir: Path,
    summary: Summary,
    topology: Topology,
    connections: Sequence[TcpRecord] | None,
) -> str:
    conns = summary.connections if connections is None else connections
    run = _load_run(out_dir)
    by_scenario: dict[str | None, list[TcpRecord]] = {}
    for conn in conns:
        by_scenario.setdefault(conn.scenario, []).append(conn)
    parts = [
        _head(summary),
        _header(summary, topology, conns),
        section(
            t("report.section.topology"),
            "topology",
            topology_svg(topology, summary.nodes) + _netem(topology),
        ),
    ]
    timelines = _timelines(topology, conns)
    if timelines:
        parts.append(section(t("report.section.timelines"), "timelines", timelines))
    parts += _scenarios(out_dir, summary, topology, run, by_scenario)
    parts += _others(summary.udp_flows, by_scenario.get(None, []))
    parts.append(section(t("report.section.hosts"), "hosts", hosts_html(out_dir, topology, run)))
    parts.append(f"<script>\n{asset('report.js')}</script></body></html>\n")
    return "\n".join(parts)


def _netem(topology: Topology) -> str:
    """The impaired links, as netem applied them: what each node received or sent."""
    if not topology.impairments:
        return ""
    items = "".join(
        "<li>"
        + t(
            f"report.netem.{i.direction}",
            node=esc(i.node),
            network=esc(i.network),
            netem=esc(i.netem.describe()),
        )
        + "</li>"
        for i in topology.impairments
    )
    return f"<p>{esc(t('report.netem.intro'))}</p><ul class=facts>{items}</ul>"


def _load_run(out_dir: Path) -> RunRecord | None:
    """run.json, typed; None when there is none this version can read: the page is then
    drawn from the summary and the snapshots alone."""
    try:
        return load_run(out_dir)
    except RecordError:
        return None


def _head(summary: Summary) -> str:
    title = t("report.title", topology=summary.topology)
    return (
        f"<!DOCTYPE html>\n<html lang={current_lang()}><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>"
        f"<style>\n{asset('report.css')}\n{asset('figures.css')}\n{asset('anatomy.css')}</style>"
        "</head><body>"
    )


def _header(summary: Summary, topology: Topology, connections: Sequence[TcpRecord]) -> str:
    error = ""
    if summary.error:
        said = reread(summary.error, READ_BACK)
        error = f'<p class="error">{esc(t("report.error", error=said))}</p>'
    error += _damaged(summary)
    nav = "".join(
        f'<a href="#sc-{esc(s.name)}" class="{"ok" if s.passed else "bad"}">{esc(s.name)}</a>'
        for s in summary.scenarios
    )
    verdict = summary.passed
    failed = t("verdict.interrupted" if summary.interrupted else "verdict.failed")
    return (
        f'<header class="{"ok" if verdict else "bad"}"><div class=title>'
        f"<h1>{esc(summary.topology)}</h1>"
        f"{badge(verdict, t('verdict.passed'), failed)}</div>"
        f"<p class=desc>{esc(translated(f'description.{topology.name}', topology.description))}</p>"
        f"<dl class=facts>{_facts(summary, connections)}</dl>{error}"
        f'<nav><a href="#topology">{esc(t("report.nav.topology"))}</a>{nav}'
        f'<a href="#hosts">{esc(t("report.nav.hosts"))}</a></nav></header>'
    )


def _damaged(summary: Summary) -> str:
    """Every damaged or unreadable evidence file, with where the damage is."""
    if not summary.evidence_problems:
        return ""
    items = "".join(f"<li>{esc(str(p))}</li>" for p in summary.evidence_problems)
    head = esc(t("report.damaged"))
    return f'<div class="error damaged-evidence">{head}<ul>{items}</ul></div>'


def _facts(summary: Summary, connections: Sequence[TcpRecord]) -> str:
    passed_n = sum(1 for s in summary.scenarios if s.passed)
    timing_text = t("list.sep").join(
        t("report.fact.timing", phase=t_or(f"phase.{k}", k), seconds=float(v))
        for k, v in summary.timings.items()
    )
    hs_ok = sum(1 for c in connections if c.handshake.ok)
    hosts = {name: info.host for name, info in summary.nodes.items() if info.host}
    on = ", ".join(t("report.fact.host_on", node=n, host=h) for n, h in hosts.items())
    facts = [
        ("backend", summary.backend),
        *([("hosts", on)] if hosts else []),
        # An overlay's VXLAN headers ride inside the engines' own MTU: the MSS a handshake
        # shows is smaller than on the other backends, which is no fault of the programs.
        *([("link", t("report.fact.swarm_mtu"))] if summary.backend == "swarm" else []),
        ("run", summary.run_id),
        ("started", summary.started),
        ("timings", timing_text),
        (
            "scenarios",
            t("report.fact.scenarios_passed", passed=passed_n, total=len(summary.scenarios)),
        ),
        ("connections", t("report.fact.connections_value", count=len(connections), clean=hs_ok)),
    ]
    return "".join(f"<dt>{esc(t(f'report.fact.{k}'))}</dt><dd>{esc(v)}</dd>" for k, v in facts)


def _timelines(topology: Topology, connections: Sequence[TcpRecord]) -> str:
    """A timeline per TCP service that had two connections or more."""
    out = []
    for svc in topology.services:
        conns = [c for c in connections if c.service == svc.name]
        out.append(service_timeline(svc.name, svc.program, conns, svc.model))
    return "".join(out)


def _scenarios(
    out_dir: Path,
    summary: Summary,
    topology: Topology,
    run: RunRecord | None,
    by_scenario: Mapping[str | None, list[TcpRecord]],
) -> list[str]:
    probes = probe_calls(run)
    ev = Evidence(out_dir, run) if run is not None else None
    out = []
    for sc in summary.scenarios:
        conns = by_scenario.get(sc.name, [])
        restarts = restarts_html(out_dir, run, sc, topology, conns)
        spec = next((s for s in topology.scenarios if s.name == sc.name), None)
        pictures = claim_pictures(ev, topology, spec)
        out.append(scenario_html(sc, topology, conns, probes, restarts, pictures))
    return out


def _others(flows: Sequence[UdpRecord], orphans: Sequence[TcpRecord]) -> list[str]:
    """The sections of what no scenario explains: TCP connections no scenario made, and
    the UDP flows."""
    out = []
    if orphans:
        out.append(
            section(
                t("report.section.other"),
                "other",
                f"<p class=note>{esc(t('report.other_note'))}</p>" + connections_html(orphans),
            )
        )
    if flows:
        out.append(section(t("report.section.udp"), "udp", udp_table(flows)))
    return out
