"""Judging a results folder: the checks of every scenario, as pure functions of what
``lab run`` left on disk (run.json, snapshots, pcaps) and the topology.

Each check answers one claim with ``passed`` and a ``detail`` that says what was seen, so
that a failed check can be understood without opening the evidence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from lab.evidence.analysis.pcap import flows_between, pcap_ok
from lab.evidence.analysis.snapshots import children, zombies
from lab.evidence.folder import Evidence
from lab.run.record import ClientRecord, ClientResult, ConnectionOutcome, ProbeResult
from lab.spec.model import Scenario, Service, Topology


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def scenario_checks(topo: Topology, ev: Evidence, sc: Scenario) -> list[Check]:
    service = topo.service(sc.service)
    checks = [check_probes(ev, sc) if sc.probe else check_replies(ev, sc)]
    if sc.restart:
        checks.append(check_restarts(ev, sc))
    if service.program == "fork_server":
        checks += fork_checks(topo, ev, service)
    if service.program == "thread_server":
        checks += thread_checks(topo, ev, service)
    if ev.record.captures:
        checks.append(check_capture(topo, ev, sc, service))
    # Imported here: lab.verdict.claims builds on this module's Check and Evidence.
    from lab.verdict import claims

    return checks + claims.claim_checks(topo, ev, sc)


# -- replies ---------------------------------------------------------------------------
def _clients(ev: Evidence, sc: Scenario) -> dict[str, ClientRecord]:
    done = ev.record.scenarios.get(sc.name)
    return done.clients if done is not None else {}


def _why_no_result(client: ClientRecord | None) -> str:
    if client is not None and client.error:
        return client.error
    last = client.stderr.strip().splitlines()[-1:] if client is not None else []
    return last[0] if last else "did not run"


def check_replies(ev: Evidence, sc: Scenario) -> Check:
    outcome = _clients(ev, sc)
    expected, good, problems = list(sc.expected_replies), 0, []
    for node in sc.clients:
        client = outcome.get(node)
        result = client.result if client else None
        if not isinstance(result, ClientResult):
            problems.append(f"{node}: no client result ({_why_no_result(client)})")
            continue
        for conn in result.connections:
            if conn.error is None and conn.replies == expected:
                good += 1
            else:
                problems.append(_reply_problem(node, conn, expected))
    total = sc.total_connections
    detail = f"{good}/{total} connections got {_short(expected)}"
    if problems:
        detail += "; " + "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else "")
    return Check("replies", good == total and not problems, detail)


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


# -- probes and restarts -----------------------------------------------------------------
def check_probes(ev: Evidence, sc: Scenario) -> Check:
    """Each client's probe ran its sequence and ended with ``expect_error`` (or none)."""
    outcome = _clients(ev, sc)
    want = sc.expect_error or "no error"
    good, problems = 0, []
    for node in sc.clients:
        client = outcome.get(node)
        result = client.result if client else None
        if not isinstance(result, ProbeResult):
            last = client.stderr.strip().splitlines()[-1:] if client else []
            problems.append(f"{node}: no probe result ({(last or ['did not run'])[0]})")
            continue
        got = result.error or "no error"
        if got == want and result.completed:
            good += 1
        else:
            done = "" if result.completed else " (sequence not completed)"
            problems.append(f"{node}: {got}{done}")
    detail = f"{good}/{len(sc.clients)} {sc.probe} probes ended with {want}"
    if problems:
        detail += "; " + "; ".join(problems[:3])
    return Check("probe", good == len(sc.clients), detail)


def check_restarts(ev: Evidence, sc: Scenario) -> Check:
    """Each restart did what the file says: listened, or exited naming ``expect``."""
    scenario = ev.record.scenarios.get(sc.name)
    done = (scenario.restarts if scenario else None) or []
    problems = []
    for i, want in enumerate(sc.restart, start=1):
        got = done[i - 1] if i <= len(done) else None
        if got is None:
            problems.append(f"#{i} was not done")
            continue
        log = ev.root / got.log
        text = log.read_text(errors="replace") if log.is_file() else ""
        if want.expect is None and not got.listening:
            problems.append(f"#{i} did not listen (exit {got.exit_status})")
        elif want.expect is not None and (got.listening or want.expect not in text):
            problems.append(f"#{i} did not fail with {want.expect} (log: {text.strip()[-80:]!r})")
    detail = f"{len(sc.restart) - len(problems)}/{len(sc.restart)} restarts as expected"
    if problems:
        detail += "; " + "; ".join(problems)
    return Check("restarts", not problems, detail)


# -- processes -------------------------------------------------------------------------
def held_connections(topo: Topology, service: Service) -> int:
    """Connections held open on a service at the "during" snapshot (scenarios run at once)."""
    return sum(
        sc.total_connections for sc in topo.scenarios if sc.service == service.name and sc.hold > 0
    )


def served_connections(topo: Topology, service: Service) -> int:
    return sum(sc.total_connections for sc in topo.scenarios if sc.service == service.name)


def _service_pid(ev: Evidence, service: Service) -> int | None:
    info = ev.record.services.get(service.name)
    return info.pid if info and info.pid else None


def fork_checks(topo: Topology, ev: Evidence, service: Service) -> list[Check]:
    pid = _service_pid(ev, service)
    if pid is None:
        return [Check("fork server", False, "the service never started")]
    checks = []
    held = held_connections(topo, service)
    during = ev.processes(service.node, "during")
    if held and not service.option("double_fork") and during is not None:
        kids = [r for r in children(during, pid) if not r.zombie]
        checks.append(
            Check(
                "one child per connection",
                len(kids) == held,
                f"{len(kids)} live children of pid {pid} for {held} held connections",
            )
        )
    after = ev.processes(service.node, "after")
    if after is None:
        return [*checks, Check("children reaped", False, "no 'after' snapshot")]
    dead = zombies(after, pid)
    if service.option("no_reap"):
        want = 0 if service.option("double_fork") else served_connections(topo, service)
        name, ok = "zombies kept (--no-reap)", len(dead) == want
        detail = f"{len(dead)} zombie children of pid {pid}, expected {want}"
    else:
        name, ok = "children reaped", not dead
        detail = f"{len(dead)} zombie children of pid {pid} after the clients left"
    return [*checks, Check(name, ok, detail)]


def thread_checks(topo: Topology, ev: Evidence, service: Service) -> list[Check]:
    pid = _service_pid(ev, service)
    held = held_connections(topo, service)
    during = ev.processes(service.node, "during")
    if pid is None or during is None or not held:
        return [] if held == 0 else [Check("one process", False, "no 'during' evidence")]
    me = next((r for r in during if r.pid == pid), None)
    kids = children(during, pid)
    threads = me.nlwp if me else 0
    ok = me is not None and not kids and threads >= held + 1
    detail = (
        f"pid {pid}: {len(kids)} child processes, {threads} threads for {held} held connections"
    )
    return [Check("one process, a thread per connection", ok, detail)]


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
