"""Socket errors a program meets and what the wire and the snapshots show of them: a
refused connect, a write after a reset, a bind while TIME_WAIT holds the port.

Holds the built-in checks of probes and restarts and the error claims built on them.
"""

from __future__ import annotations

from dataclasses import replace

from lab.evidence.analysis.snapshots import SocketRow
from lab.evidence.analysis.tcp import CLIENT, SERVER, Segment, TcpConnection
from lab.evidence.folder import Evidence
from lab.i18n import Msg, join, known, msg
from lab.run.record import ProbeResult, RestartRecord
from lab.spec.model import Scenario, Topology
from lab.verdict.check import Check, first_failure
from lab.verdict.scope import Scope, none_seen, scenario_clients, scope, sockets, tcp, tcp_on
from lab.verdict.tcp_lifecycle import closed_first_by

# -- the built-in checks: probes and restarts ----------------------------------------------


def check_probes(ev: Evidence, sc: Scenario) -> Check:
    """Each client's probe ran its sequence and ended with ``expect_error`` (or none)."""
    outcome = scenario_clients(ev, sc)
    want = sc.expect_error or "no error"
    good = 0
    problems: list[Msg] = []
    for node in sc.clients:
        client = outcome.get(node)
        if client is None or client.result is None:
            last = client.stderr.strip().splitlines()[-1:] if client is not None else []
            why = last[0] if last else msg("detail.did_not_run")
            problems.append(msg("detail.probe.no_result", node=node, why=why))
            continue
        # A line client's result in a probe's place reads as a sequence not completed.
        probe = client.result if isinstance(client.result, ProbeResult) else None
        got = (probe.error if probe else None) or "no error"
        completed = probe is not None and probe.completed
        if got == want and completed:
            good += 1
        else:
            done = "" if completed else msg("detail.probe.incomplete")
            problems.append(msg("detail.probe.got", node=node, got=known(got), done=done))
    said = msg(
        "detail.probe.ended", good=good, total=len(sc.clients), probe=sc.probe, want=known(want)
    )
    if problems:
        said = msg("detail.then", a=said, b=join(problems[:3]))
    return Check.said("probe", good == len(sc.clients), said)


def check_restarts(ev: Evidence, sc: Scenario) -> Check:
    """Each restart did what the file says: listened, or exited naming ``expect``."""
    done = _scenario_restarts(ev, sc)
    problems: list[Msg] = []
    for i, want in enumerate(sc.restart, start=1):
        got = done[i - 1] if i <= len(done) else None
        if got is None:
            problems.append(msg("detail.restart.not_done", i=i))
            continue
        log = ev.root / got.log
        text = ev.text(log) or ""
        if want.expect is None and not got.listening:
            problems.append(msg("detail.restart.no_listen", i=i, status=got.exit_status))
        elif want.expect is not None and (got.listening or want.expect not in text):
            log_end = repr(text.strip()[-80:])
            problems.append(msg("detail.restart.no_fail", i=i, want=want.expect, log=log_end))
    said = msg(
        "detail.restart.as_expected",
        good=len(sc.restart) - len(problems),
        total=len(sc.restart),
    )
    if problems:
        said = msg("detail.then", a=said, b=join(problems))
    return Check.said("restarts", not problems, said)


# -- what the probes reported --------------------------------------------------------------


def _probe_scope(topo: Topology, ev: Evidence, sc: Scenario) -> Scope:
    """The scenario's scope on the port its probes dial (the refused probe's own port)."""
    found = scope(topo, ev, sc)
    return replace(found, service=replace(found.service, port=topo.scenario_port(sc)))


def _probe_results(ev: Evidence, sc: Scenario) -> dict[str, ProbeResult]:
    """Each client node's probe report, for the nodes that have one."""
    clients = scenario_clients(ev, sc)
    out = {}
    for node in sc.clients:
        client = clients.get(node)
        if client is not None and isinstance(client.result, ProbeResult):
            out[node] = client.result
    return out


def _reported(ev: Evidence, sc: Scenario, errno_name: str) -> tuple[bool, Msg]:
    """Whether every client's probe ended with ``errno_name``, and the failing call(s)."""
    results = _probe_results(ev, sc)
    said: list[Msg] = []
    for node in sc.clients:
        result = results.get(node)
        if result is None:
            return False, msg("detail.probe.no_report", node=node)
        # The probe's one connection; a report without it failed no call and no errno.
        conn = result.connections[0] if result.connections else None
        failed = [e for e in (conn.events if conn else []) if e.error]
        call = failed[-1].detail if failed else msg("said.no call failed")
        said.append(msg("detail.node_said", node=node, said=call))
        if (conn.error if conn else None) != errno_name:
            return False, msg("detail.all", items=join(said))
    return True, msg("detail.all", items=join(said))


def _seg_text(seg: Segment) -> str:
    return f"#{seg.index} {seg.sender} {'+'.join(seg.flags)} seq={seg.seq} ack={seg.ack}"


# -- refused by RST --------------------------------------------------------------------------


def _refusal_problem(c: TcpConnection) -> Msg | str | None:
    syn = next((s for s in c.segments if s.sender == CLIENT and s.flags == ("SYN",)), None)
    if syn is None:
        return "no SYN from the client captured"
    if any(s.sender == SERVER and s.has("SYN") for s in c.segments):
        return "the server answered with SYN-ACK: something listens there"
    rst = next((s for s in c.segments if s.sender == SERVER and s.has("RST")), None)
    if rst is None:
        return "the server never answered the SYN with RST"
    if not rst.has("ACK") or rst.ack != (syn.seq + 1) % (1 << 32):
        return msg("detail.refused.rst_ack", rst=_seg_text(rst), want=syn.seq + 1)
    return None


def refused_by_rst(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """A connect to a port nothing listens on: the client's SYN is answered by RST+ACK
    acknowledging SYN + 1 (no SYN-ACK), and the client reports ECONNREFUSED."""
    name = "refused by RST"
    found = _probe_scope(topo, ev, sc)
    conns = tcp_on(ev, found.service.node, found)
    if not conns:
        return none_seen(name, found, "SYNs")
    wire = first_failure(name, conns, _refusal_problem, "SYN answered by RST+ACK")
    said_ok, said = _reported(ev, sc, "ECONNREFUSED")
    detail = msg("detail.then", a=wire.evidence(), b=said)
    if wire.passed:
        syn = next(s for s in conns[0].segments if s.flags == ("SYN",))
        rst = next(s for s in conns[0].segments if s.has("RST"))
        detail = msg("detail.refused.ok", wire=wire.evidence(), seq=syn.seq, ack=rst.ack, said=said)
    return Check.said(name, wire.passed and said_ok, detail)


# -- EPIPE after a reset ---------------------------------------------------------------------

_Found = tuple[Segment | None, Segment | None, Segment | None]


def _reset_sequence(c: TcpConnection) -> _Found:
    """The server's FIN, the client's first data after it, the server's RST after that."""
    fin: Segment | None = None
    data: Segment | None = None
    for seg in c.segments:
        if fin is None:
            fin = seg if seg.sender == SERVER and seg.has("FIN") else None
        elif data is None:
            data = seg if seg.sender == CLIENT and seg.payload_len > 0 else None
        elif seg.sender == SERVER and seg.has("RST"):
            return fin, data, seg
    return fin, data, None


def _reset_problem(c: TcpConnection) -> Msg | str | None:
    fin, data, rst = _reset_sequence(c)
    if fin is None or c.close.first_fin_by != SERVER:
        return msg("detail.epipe.not_first", kind=msg(f"close.kind.{c.close.kind}"))
    if data is None:
        return "the client wrote nothing after the server's FIN"
    if rst is None:
        return "the server never answered the client's write with RST"
    return None


def epipe_after_reset(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The server closes first; the client writes anyway and the server answers with RST;
    the client's next write fails with EPIPE (SIGPIPE ignored)."""
    name = "EPIPE after reset"
    found, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen(name, found)
    wire = first_failure(name, conns, _reset_problem, "server FIN, client data, server RST")
    said_ok, said = _reported(ev, sc, "EPIPE")
    detail = msg("detail.then", a=wire.evidence(), b=said)
    fin, data, rst = _reset_sequence(conns[0])
    if wire.passed and fin is not None and data is not None and rst is not None:
        detail = msg(
            "detail.epipe.ok",
            wire=wire.evidence(),
            fin=fin.index,
            size=data.payload_len,
            data=data.index,
            rst=rst.index,
            said=said,
        )
    return Check.said(name, wire.passed and said_ok, detail)


# -- restarts and TIME_WAIT ------------------------------------------------------------------


def _scenario_restarts(ev: Evidence, sc: Scenario) -> list[RestartRecord]:
    record = ev.record.scenarios.get(sc.name)
    return (record.restarts or []) if record is not None else []


def _restarts(ev: Evidence, sc: Scenario, reuseaddr: bool) -> list[RestartRecord]:
    return [r for r in _scenario_restarts(ev, sc) if r.reuseaddr is reuseaddr]


def _time_wait_at(ev: Evidence, node: str, phase: str, port: int) -> list[SocketRow] | None:
    """TIME_WAIT sockets on ``port`` (local: the server's side) in a snapshot, or None."""
    rows = sockets(ev, node, phase)
    if rows is None:
        return None
    return [r for r in rows if r.state == "TIME_WAIT" and r.local.port == port]


def _log(ev: Evidence, restart: RestartRecord) -> str:
    return (ev.text(ev.root / restart.log) or "").strip()


_Found2 = tuple[Msg | None, Msg | str]


def _restart_time_wait(ev: Evidence, scope: Scope, restart: RestartRecord) -> _Found2:
    """(problem, fact) about the TIME_WAIT the restart met, from its snapshot."""
    port, node = scope.service.port, scope.service.node
    tw = _time_wait_at(ev, node, restart.snapshot, port)
    if tw is None:
        return msg("detail.restart.no_snapshot", snapshot=repr(restart.snapshot), node=node), ""
    ours = [r for r in tw if r.remote.port in scope.ports]
    fact = msg("detail.restart.tw", n=len(tw), node=node, port=port, ours=len(ours))
    return (None if ours else msg("detail.restart.none_ours", fact=fact)), fact


def _bind_refused(ev: Evidence, scope: Scope, restart: RestartRecord) -> _Found2:
    """(problem, fact): the restart met the scenario's TIME_WAIT and failed with
    EADDRINUSE, exit status 1."""
    problem, fact = _restart_time_wait(ev, scope, restart)
    log = _log(ev, restart)
    if problem is None and restart.listening:
        problem = msg("detail.restart.listens", fact=fact)
    if problem is None and ("EADDRINUSE" not in log or restart.exit_status != 1):
        problem = msg(
            "detail.restart.exit", fact=fact, status=restart.exit_status, log=repr(log[-100:])
        )
    return problem, fact


def eaddrinuse_in_time_wait(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The server closed first (pcap), so TIME_WAIT is on its port when it restarts
    (snapshot); started again without SO_REUSEADDR, its bind fails with EADDRINUSE (log)
    and it exits 1."""
    name = "EADDRINUSE in TIME_WAIT"
    found, conns = tcp(topo, ev, sc)
    tries = _restarts(ev, sc, reuseaddr=False)
    if not tries:
        return Check(name, False, "no restart without reuseaddr was recorded")
    if not conns:
        return none_seen(name, found)
    wire = closed_first_by(name, conns, SERVER)
    if not wire.passed:
        return wire
    for r in tries:
        problem, fact = _bind_refused(ev, found, r)
        if problem is not None:
            return Check.said(name, False, msg("detail.then", a=wire.evidence(), b=problem))
    last = tries[-1]
    said = msg(
        "detail.restart.refused",
        wire=wire.evidence(),
        fact=fact,
        status=last.exit_status,
        log=repr(_log(ev, last).splitlines()[-1]),
    )
    return Check.said(name, True, said)


def _rebound(ev: Evidence, scope: Scope, restart: RestartRecord) -> _Found2:
    """(problem, fact): the restart met the scenario's TIME_WAIT and listened anyway."""
    problem, fact = _restart_time_wait(ev, scope, restart)
    if problem is None and not restart.listening:
        log = repr(_log(ev, restart)[-100:])
        problem = msg("detail.restart.no_rebind", fact=fact, log=log)
        if not scope.service.option("reuseaddr"):
            problem = msg("detail.restart.first_no_reuse", said=problem)
    return problem, fact


def reuseaddr_rebinds(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Started again with SO_REUSEADDR while TIME_WAIT is still on its port (snapshot),
    the server binds and listens. On Linux this needs SO_REUSEADDR on the TIME_WAIT
    socket too, which it inherits from the listener that accepted the connection."""
    name = "SO_REUSEADDR rebinds"
    found = scope(topo, ev, sc)
    tries = _restarts(ev, sc, reuseaddr=True)
    if not tries:
        return Check(name, False, "no restart with reuseaddr was recorded")
    for r in tries:
        problem, fact = _rebound(ev, found, r)
        if problem is not None:
            return Check.said(name, False, problem)
    listen = " ".join(tries[-1].listen_socket.split())
    return Check.said(name, True, msg("detail.restart.rebinds", fact=fact, listen=listen))
