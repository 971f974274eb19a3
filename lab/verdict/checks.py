"""Judging a results folder: the checks of every scenario, as pure functions of what
``lab run`` left on disk (run.json, snapshots, pcaps) and the topology.

Each check answers one claim with ``passed`` and a ``detail`` that says what was seen, so
that a failed check can be understood without opening the evidence. The built-in checks
(replies, probes, restarts, the fork and thread servers, the capture) come first, then the
claims the scenario lists (``lab.verdict.claims``).
"""

from __future__ import annotations

from collections.abc import Iterable

from lab.evidence.analysis.pcap import flows_between, pcap_ok
from lab.evidence.folder import Evidence
from lab.run.record import ClientRecord, ConnectionOutcome
from lab.spec.model import Scenario, Service, Topology
from lab.verdict.accept_queue import one_at_a_time
from lab.verdict.check import Check
from lab.verdict.claims import claim_checks
from lab.verdict.errors import check_probes, check_restarts
from lab.verdict.processes import fork_checks, thread_checks
from lab.verdict.scope import line_connections, scenario_clients
from lab.verdict.udp import datagram_boundaries

__all__ = [
    "Check",
    "check_capture",
    "check_replies",
    "scenario_checks",
]


def scenario_checks(topo: Topology, ev: Evidence, sc: Scenario) -> list[Check]:
    service = topo.service(sc.service)
    checks = [check_probes(ev, sc) if sc.probe else check_replies(ev, sc)]
    if sc.restart:
        checks.append(check_restarts(ev, sc))
    # The design decides: a user's fork server is judged like the lab's.
    if service.model == "fork":
        checks += fork_checks(topo, ev, service)
    if service.model == "thread":
        checks += thread_checks(topo, ev, service)
    # The other designs' built-in checks, for the user's programs (the lab's own iterative
    # and UDP servers are judged by the claims their experiments list).
    if service.user is not None and service.model == "iterative":
        checks.append(one_at_a_time(topo, ev, service))
    if service.user is not None and service.model == "udp" and not sc.client_program:
        checks.append(datagram_boundaries(topo, ev, sc))
    if ev.record.captures:
        checks.append(check_capture(topo, ev, sc, service))
    return checks + claim_checks(topo, ev, sc)


# -- replies ---------------------------------------------------------------------------
def check_replies(ev: Evidence, sc: Scenario) -> Check:
    outcome = scenario_clients(ev, sc)
    expected, good, problems = list(sc.expected_replies), 0, []
    for node in sc.clients:
        client = outcome.get(node)
        if client is None or client.result is None:
            problems.append(f"{node}: no client result ({_why_no_result(client)})")
            continue
        for conn in line_connections(client):
            if conn.error is None and conn.replies == expected:
                good += 1
            else:
                problems.append(_reply_problem(node, conn, expected))
    total = sc.total_connections
    detail = f"{good}/{total} connections got {_short(expected)}"
    if problems:
        detail += "; " + "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else "")
    return Check("replies", good == total and not problems, detail)


def _why_no_result(client: ClientRecord | None) -> str:
    """The client's own error, else the last line of its stderr, else that it never ran."""
    if client is not None and client.error:
        return client.error
    last = client.stderr.strip().splitlines()[-1:] if client is not None else []
    return last[0] if last else "did not run"


def _reply_problem(node: str, conn: ConnectionOutcome, expected: list[str]) -> str:
    where = f"{node} #{conn.index}"
    if conn.error:
        return f"{where}: {conn.error}"
    if conn.closed_early:
        return f"{where}: server closed early after {len(conn.replies)} replies"
    return f"{where}: got {_short(conn.replies)}"


def _short(lines: Iterable[str], limit: int = 60) -> str:
    text = ", ".join(repr(x) for x in lines)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- captures --------------------------------------------------------------------------
def check_capture(topo: Topology, ev: Evidence, sc: Scenario, service: Service) -> Check:
    server_ips = {str(i.address) for i in topo.node(service.node).interfaces}
    client_ips = {str(i.address) for n in sc.clients for i in topo.node(n).interfaces}
    problems, seen = [], 0
    port = topo.scenario_port(sc)  # a probe may dial a port the service does not use
    for node in {service.node, *sc.clients}:
        for path in ev.captures(node):
            ok, why = pcap_ok(path)
            if not ok:
                problems.append(f"{node}/{path.name}: {why}")
                continue
            packets = ev.packets(path)
            seen += sum(
                len(flows_between(packets, server, client, port, service.protocol))
                for server in server_ips
                for client in client_ips
            )
    ok = not problems and seen > 0
    detail = f"{seen} {service.protocol.upper()} packets of the scenario in the captures"
    if problems:
        detail += "; " + "; ".join(problems[:3])
    return Check("captured", ok, detail)
