"""Judging a results folder: the checks of every scenario, as pure functions of what
``lab run`` left on disk (run.json, snapshots, pcaps) and the topology.

Each check answers one claim with ``passed`` and a ``detail`` that says what was seen, so
that a failed check can be understood without opening the evidence. The built-in checks
(replies, probes, restarts, the fork and thread servers, the capture) come first, then the
claims the scenario lists (``lab.verdict.claims``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from lab.evidence.analysis.pcap import flows_between
from lab.evidence.folder import Evidence
from lab.i18n import Msg, join, msg
from lab.run.record import ClientRecord, ConnectionOutcome
from lab.spec.model import Scenario, Service, Topology
from lab.verdict.accept_queue import one_at_a_time
from lab.verdict.bugs import judged
from lab.verdict.check import Check
from lab.verdict.claims import CLAIMS
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
    groups: list[Callable[[], list[Check]]] = [
        lambda: [
            check_probes(ev, sc) if sc.probe else judged(check_replies(ev, sc), sc.bug, "replies")
        ]
    ]
    if sc.restart:
        groups.append(lambda: [check_restarts(ev, sc)])
    # The design decides: a user's fork server is judged like the lab's.
    if service.model == "fork":
        groups.append(lambda: fork_checks(topo, ev, service))
    if service.model == "thread":
        groups.append(lambda: thread_checks(topo, ev, service))
    # The other designs' built-in checks, for the user's programs (the lab's own iterative
    # and UDP servers are judged by the claims their experiments list).
    if service.user is not None and service.model == "iterative":
        groups.append(lambda: [one_at_a_time(topo, ev, service)])
    if service.user is not None and service.model == "udp" and not sc.client_program:
        groups.append(lambda: [datagram_boundaries(topo, ev, sc)])
    if ev.record.captures:
        groups.append(lambda: [check_capture(topo, ev, sc, service)])
    # One group per claim: a damaged file fails the claims that read it, not every claim.
    groups += [_claim(topo, ev, sc, name) for name in sc.claims]
    return [check for make in groups for check in judged_on_sound_evidence(ev, make)]


def _claim(topo: Topology, ev: Evidence, sc: Scenario, name: str) -> Callable[[], list[Check]]:
    return lambda: [judged(CLAIMS[name](topo, ev, sc), sc.bug, name)]


def judged_on_sound_evidence(ev: Evidence, make: Callable[[], list[Check]]) -> list[Check]:
    """The checks ``make`` gives, none of them passed when a file they read is damaged or
    unreadable: what is missing from it could have made them fail. The detail names the
    file and where the damage is."""
    with ev.watching() as used:
        checks = make()
    found = ev.problems(used)
    damage = [p for p in found if p.fails_checks]
    if not found:
        return checks
    if not damage:
        # Nothing lost (bytes read as U+FFFD): the checks stand, and say what they read.
        notes = "; ".join(map(str, found))  # located paths, as written
        return [
            Check.said(c.name, c.passed, msg("detail.noted", detail=c.evidence(), notes=notes))
            for c in checks
        ]
    more = msg("detail.and_more", n=len(damage) - 2) if len(damage) > 2 else ""
    note = "; ".join(map(str, damage[:2]))  # located paths, as written
    return [
        Check.said(
            c.name, False, msg("detail.not_judged", detail=c.evidence(), damage=note, more=more)
        )
        for c in checks
    ]


# -- replies ---------------------------------------------------------------------------
def check_replies(ev: Evidence, sc: Scenario) -> Check:
    outcome = scenario_clients(ev, sc)
    expected, good = list(sc.expected_replies), 0
    problems: list[Msg | str] = []
    for node in sc.clients:
        client = outcome.get(node)
        if client is None or client.result is None:
            problems.append(msg("detail.no_result", node=node, why=_why_no_result(client)))
            continue
        for conn in line_connections(client):
            if conn.error is None and conn.replies == expected:
                good += 1
            elif sc.server_closes_after and conn.closed_early and conn.replies == expected:
                good += 1  # the replies, then the server's close: what the client does next
                # (its error) is for the claims to judge
            else:
                problems.append(_reply_problem(node, conn, expected))
    total = sc.total_connections
    key = "detail.replies_closed" if sc.server_closes_after else "detail.replies"
    said = msg(key, good=good, total=total, expected=_short(expected))
    if problems:
        listed = msg("detail.more" if len(problems) > 3 else "detail.all", items=join(problems[:3]))
        said = msg("detail.and_problems", said=said, problems=listed)
    return Check.said("replies", good == total and not problems, said)


def _why_no_result(client: ClientRecord | None) -> Msg | str:
    """The client's own error, else the last line of its stderr, else that it never ran."""
    if client is not None and client.error:
        return client.error
    last = client.stderr.strip().splitlines()[-1:] if client is not None else []
    return last[0] if last else msg("detail.did_not_run")


def _reply_problem(node: str, conn: ConnectionOutcome, expected: list[str]) -> Msg | str:
    where = f"{node} #{conn.index}"
    if conn.error:
        return f"{where}: {conn.error}"
    if conn.closed_early:
        return msg("detail.closed_early", where=where, n=len(conn.replies))
    return msg("detail.got", where=where, replies=_short(conn.replies))


def _short(lines: Iterable[str], limit: int = 60) -> str:
    text = ", ".join(repr(x) for x in lines)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- captures --------------------------------------------------------------------------
def check_capture(topo: Topology, ev: Evidence, sc: Scenario, service: Service) -> Check:
    """The scenario's traffic is in the captures of the server's node and of every client
    node that has captures: each node's own capture is its evidence, so an empty or
    truncated server capture is not made up for by the clients' ones."""
    server_ips = {str(i.address) for i in topo.node(service.node).interfaces}
    client_ips = {str(i.address) for n in sc.clients for i in topo.node(n).interfaces}
    problems: list[Msg] = []
    seen = 0
    port = topo.scenario_port(sc)  # a probe may dial a port the service does not use
    for node in sorted({service.node, *sc.clients}):
        here, files = 0, []
        for path in ev.captures(node):
            packets = ev.packets(path)
            here += sum(
                len(flows_between(packets, server, client, port, service.protocol))
                for server in server_ips
                for client in client_ips
            )
            files.append(
                msg("detail.file", path=f"{node}/{path.name}", frames=_frames_text(ev, path))
            )
        seen += here
        if files and not here:
            problems.append(msg("detail.none_in", files=join(files, "sep.comma")))
    ok = not problems and seen > 0
    said = msg("detail.captured", seen=seen, protocol=service.protocol.upper())
    if problems:
        said = msg("detail.and_problems", said=said, problems=join(problems[:3]))
    return Check.said("captured", ok, said)


def _frames_text(ev: Evidence, path: Path) -> Msg:
    frames = ev.frames(path)
    if frames:
        return msg("detail.frames.many" if frames > 1 else "detail.frames.one", n=frames)
    return msg("detail.frames.unreadable" if ev.problems({path}) else "detail.frames.none")
