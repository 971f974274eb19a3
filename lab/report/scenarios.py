"""A scenario's section: what it ran, its checks (claim and evidence), the server's
restarts when it had some, and its TCP connections."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from lab.evidence.records import TcpRecord
from lab.report.connections_html import connections_html
from lab.report.markup import Call, badge, esc
from lab.report.record import ScenarioVerdict
from lab.spec.model import Scenario, Service, Topology
from lab.verdict.checks import Check


def scenario_html(
    sc: ScenarioVerdict,
    topology: Topology,
    conns: Sequence[TcpRecord],
    probes: Mapping[str, Sequence[Call]] | None = None,
    restarts: str = "",
    pictures: str = "",
) -> str:
    """The section of one scenario's verdict;
    ``restarts`` is its restart timeline and ``pictures`` its claims' pictures
    (lab.report.pictures), already drawn."""
    name = sc.name
    service = next((s for s in topology.services if s.name == sc.service), None)
    scenario = next((s for s in topology.scenarios if s.name == name), None)
    what = _what(topology, service, scenario) if service is not None else ""
    body = what + _checks_table(sc.checks) + pictures
    if restarts:
        body += "<h3>The server's restarts</h3>" + restarts
    if conns:
        body += f"<h3>TCP connections ({len(conns)})</h3>" + connections_html(conns, probes or {})
    passed = sc.passed
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


def _checks_table(checks: Iterable[Check]) -> str:
    rows = "".join(
        f'<tr class="{"ok" if c.passed else "bad"}"><td>{badge(c.passed)}'
        f"</td><td class=claim>{esc(c.name)}</td><td>{esc(c.detail)}</td></tr>"
        for c in checks
    )
    return (
        "<table class=checks><thead><tr><th></th><th>claim</th><th>evidence</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )
