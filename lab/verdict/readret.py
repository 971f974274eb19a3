"""Claims on read()'s return values, from the ``read-returns`` probe's own record
(``lab.programs.read_probe``) and, where an outcome has one, its segment in the server's
capture: the reply a read returned, the server's FIN behind a 0, and for EAGAIN and EINTR
the absence of any data from the server while the read waited.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.evidence.analysis.tcp import CLIENT, SERVER, Segment, TcpConnection
from lab.evidence.folder import Evidence
from lab.i18n import Msg, known, msg
from lab.run.record import ProbeEvent, ProbeResult
from lab.spec.model import Scenario, Topology
from lab.verdict.check import Check
from lab.verdict.scope import scenario_clients, tcp


@dataclass(frozen=True)
class _Run:
    """The probe's events and its connection as the server's capture saw it."""

    events: list[ProbeEvent]
    conn: TcpConnection

    def read(self, step: str) -> ProbeEvent | None:
        return next((e for e in self.events if e.call == "read" and e.detail == step), None)

    def replies(self) -> list[Segment]:
        return [s for s in self.conn.segments if s.sender == SERVER and s.payload_len]

    def fin(self, sender: str) -> Segment | None:
        fins = (s for s in self.conn.segments if s.sender == sender and "FIN" in s.flags)
        return next(fins, None)


def _run(topo: Topology, ev: Evidence, sc: Scenario) -> _Run | Msg:
    client = scenario_clients(ev, sc).get(sc.clients[0])
    result = client.result if client is not None else None
    if not isinstance(result, ProbeResult) or not result.connections:
        return msg("detail.probe.no_report", node=sc.clients[0])
    _, conns = tcp(topo, ev, sc)
    if len(conns) != 1:
        return msg("detail.read.conns", n=len(conns))
    return _Run(result.connections[0].events, conns[0])


def _said(e: ProbeEvent | None) -> Msg:
    if e is None:
        return msg("said.no such read in the probe's record")
    error = msg("detail.read.errno", error=e.error) if e.error else ""
    return msg("detail.read.returned", n=e.bytes, error=error)


# (problem, what held): a step's verdict, the problem None when it held.
_Verdict = tuple[Msg | None, Msg | str]


def _judge(topo: Topology, ev: Evidence, sc: Scenario, name: str, step: str) -> Check:
    run = _run(topo, ev, sc)
    if isinstance(run, Msg):
        return Check.said(name, False, run)
    problem, ok = _STEPS[step](run)
    return Check.said(name, problem is None, problem or _known_msg(ok))


def _known_msg(text: Msg | str) -> Msg:
    return text if isinstance(text, Msg) else msg("detail.all", items=known(text))


def _bytes(run: _Run) -> _Verdict:
    e, replies = run.read("bytes"), run.replies()
    if e is None or e.error or not e.bytes or e.bytes <= 0:
        return _said(e), ""
    if not replies or replies[0].payload_len != e.bytes:
        got = replies[0].payload_len if replies else 0
        return msg("detail.read.first_segment", said=_said(e), n=got), ""
    return None, msg("detail.read.bytes", n=e.bytes, index=replies[0].index, line=repr(e.line))


def _quiet_while(run: _Run, e: ProbeEvent) -> Msg | None:
    """No server data between the first reply and the reply to the line sent after the
    signals: nothing was there to read while EAGAIN or EINTR came back."""
    replies = run.replies()
    if len(replies) != 2:
        return msg("detail.read.segments", said=_said(e), n=len(replies))
    return None


def _eagain(run: _Run) -> _Verdict:
    e = run.read("eagain")
    if e is None or e.bytes != -1 or e.error != "EAGAIN":
        return _said(e), ""
    return (
        _quiet_while(run, e),
        "non-blocking read() returned -1 (EAGAIN); no server data beside the two replies",
    )


def _signal_during(run: _Run, step: str, e: ProbeEvent) -> ProbeEvent | Msg:
    """The signal sent after the read of ``step`` began and before it returned."""
    began = next((x.at for x in run.events if x.call == "reading" and x.detail == step), None)
    if began is None:
        return msg("detail.read.no_start", said=_said(e))
    during = [s for s in run.events if s.call == "signal" and began <= s.at <= e.at]
    if not during:
        return msg("detail.read.no_signal", said=_said(e))
    return during[0]


def _eintr(run: _Run) -> _Verdict:
    e = run.read("eintr")
    if e is None or e.bytes != -1 or e.error != "EINTR":
        return _said(e), ""
    sig = _signal_during(run, "eintr", e)
    if isinstance(sig, Msg):
        return sig, ""
    return _quiet_while(run, e), msg("detail.read.eintr", at=e.at, sig=sig.at)


def _restart(run: _Run) -> _Verdict:
    e = run.read("restart")
    replies = run.replies()
    if e is None or e.error or not e.bytes or e.bytes <= 0:
        return _said(e), ""
    sig = _signal_during(run, "restart", e)
    if isinstance(sig, Msg):
        return sig, ""
    if len(replies) < 2 or replies[-1].payload_len != e.bytes:
        return msg("detail.read.no_follow", said=_said(e), n=e.bytes), ""
    return None, msg("detail.read.restart", sig=sig.at, n=e.bytes, at=e.at, index=replies[-1].index)


def _eof(run: _Run) -> _Verdict:
    e, fin, client_fin = run.read("eof"), run.fin(SERVER), run.fin(CLIENT)
    if e is None or e.bytes != 0 or e.error:
        return _said(e), ""
    if fin is None:
        return msg("said.read() returned 0, but the server's FIN is not in the capture"), ""
    client_fin = next(s for s in run.conn.segments if s.sender == CLIENT and "FIN" in s.flags)
    return None, msg("detail.read.eof", fin=fin.index, client_fin=client_fin.index)


_STEPS = {"bytes": _bytes, "eagain": _eagain, "eintr": _eintr, "restart": _restart, "eof": _eof}


def read_bytes(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """A blocking read() with data waiting returns its byte count: the server's reply."""
    return _judge(topo, ev, sc, "read() returns the bytes", "bytes")


def read_eagain(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """A non-blocking read() with no data returns -1, errno EAGAIN."""
    return _judge(topo, ev, sc, "read() fails with EAGAIN", "eagain")


def read_eintr(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """A signal without SA_RESTART ends a blocking read() with -1, errno EINTR."""
    return _judge(topo, ev, sc, "read() fails with EINTR", "eintr")


def read_restarts(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """With SA_RESTART the kernel restarts the interrupted read(); it returns data later."""
    return _judge(topo, ev, sc, "read() restarts (SA_RESTART)", "restart")


def read_eof(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """After the peer's FIN, read() returns 0."""
    return _judge(topo, ev, sc, "read() returns 0 after the FIN", "eof")
