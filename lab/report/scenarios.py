"""A scenario's section: what it ran, its checks (claim and evidence), the server's
restarts when it had some, and its TCP connections."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lab.report.connections_html import connections_html
from lab.report.markup import Call, badge, esc
from lab.spec.model import Scenario, Service, Topology


def scenario_html(
    sc: Mapping[str, Any],
    topology: Topology,
    conns: Sequence[dict[str, Any]],
    probes: Mapping[str, Sequence[Call]] | None = None,
    restarts: str = "",
) -> str:
    """The section of one entry of summary.json's ``scenarios``;
    ``restarts`` is its restart timeline, already drawn."""
    name = str(sc.get("name"))
    service = next((s for s in topology.services if s.name == sc.get("service")), None)
    scenario = next((s for s in topology.scenarios if s.name == name), None)
    what = _what(topology, service, scenario) if service is not None else ""
    body = what + _checks_table(sc.get("checks", []) or [])
    if restarts:
        body += "<h3>The server's restarts</h3>" + restarts
    if conns:
        body += f"<h3>TCP connections ({len(conns)})</h3>" + connections_html(conns, probes or {})
    passed = bool(sc.get("passed"))
    return (
        f'<section id="sc-{esc(name)}" class="scenario {"ok" if passed else "bad"}">'
        f"<h2>{badge(passed)} {esc(name)}</h2>{body}</section>"
    )


def _what(topology: Topology, service: Service, scenario: Scenario | None) -> str:
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
    return what + "</p>"


def _checks_table(checks: Iterable[Mapping[str, Any]]) -> str:
    rows = "".join(
        f'<tr class="{"ok" if c.get("passed") else "bad"}"><td>{badge(bool(c.get("passed")))}'
        f"</td><td class=claim>{esc(c.get('name'))}</td><td>{esc(c.get('detail'))}</td></tr>"
        for c in checks
    )
    return (
        "<table class=checks><thead><tr><th></th><th>claim</th><th>evidence</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )
