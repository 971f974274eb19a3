"""A scenario's section: what it ran, its checks (claim and evidence), the server's
restarts when it had some, and its TCP connections."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from lab.evidence.records import TcpRecord
from lab.i18n import t
from lab.report.connections_html import connections_html
from lab.report.markup import Call, badge, check_title, esc
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
    ``restarts`` is its restart timeline and ``pictures`` those of its claims, already
    drawn (:mod:`lab.report.claim_pictures`)."""
    name = sc.name
    service = next((s for s in topology.services if s.name == sc.service), None)
    scenario = next((s for s in topology.scenarios if s.name == name), None)
    what = _what(topology, service, scenario) if service is not None else ""
    body = what + _claims(scenario) + _checks_table(sc.checks)
    if restarts:
        body += f"<h3>{esc(t('scenario.restarts'))}</h3>" + restarts
    body += pictures
    if conns:
        head = esc(t("scenario.connections", count=len(conns)))
        body += f"<h3>{head}</h3>" + connections_html(conns, probes or {})
    passed = sc.passed
    return (
        f'<section id="sc-{esc(name)}" class="scenario {"ok" if passed else "bad"}">'
        f"<h2>{badge(passed)} {esc(name)}</h2>{body}</section>"
    )


def _what(topology: Topology, service: Service, scenario: Scenario | None) -> str:
    what = "<p class=what>" + t(
        "scenario.what",
        program=esc(service.program),
        node=esc(service.node),
        port=esc(service.port),
        protocol=esc(service.protocol),
    )
    if scenario is not None and scenario.probe is not None:
        what += t(
            "scenario.what_probe",
            clients=esc(", ".join(scenario.clients)),
            probe=esc(scenario.probe),
            port=esc(topology.scenario_port(scenario)),
            error=esc(scenario.expect_error or t("scenario.none")),
        )
    elif scenario is not None:
        what += t(
            "scenario.what_lines",
            clients=esc(", ".join(scenario.clients)),
            concurrency=esc(scenario.concurrency),
            send=esc(list(scenario.send)),
            expect=esc(list(scenario.expect)),
        )
    return what + "</p>"


def _claims(scenario: Scenario | None) -> str:
    """The claims the scenario makes, each named and explained in one line."""
    if scenario is None or not scenario.claims:
        return ""
    items = "".join(
        f"<li><b>{esc(t(f'claim.{c}.name'))}</b> — {esc(t(f'claim.{c}.summary'))}</li>"
        for c in scenario.claims
    )
    return f"<p class=note>{esc(t('scenario.claims'))}</p><ul class=claims>{items}</ul>"


def _checks_table(checks: Iterable[Check]) -> str:
    rows = "".join(
        f'<tr class="{"ok" if c.passed else "bad"}"><td>{badge(c.passed)}'
        f"</td><td class=claim>{esc(check_title(c.name))}</td><td>{esc(c.text())}</td></tr>"
        for c in checks
    )
    claim, evidence = esc(t("scenario.col.claim")), esc(t("scenario.col.evidence"))
    return (
        f"<table class=checks><thead><tr><th></th><th>{claim}</th><th>{evidence}</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )
