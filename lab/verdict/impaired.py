"""Claims on impaired links (``netem``): a lost segment is sent again, with the same
sequence number, on a timer that doubles; a round trip takes the delay the link adds; the
sender's bytes in flight per round trip grow in slow start.

All read the client's capture: the client sends the data, and the loss is applied where the
server receives (its ingress), so the client's capture holds every segment it sent."""

from __future__ import annotations

from lab.evidence.analysis.tcp import CLIENT, SERVER, TcpConnection
from lab.evidence.folder import Evidence
from lab.i18n import Msg, english, join, msg
from lab.spec.model import Scenario, Topology
from lab.verdict.check import Check, first_failure
from lab.verdict.scope import Scope, none_seen, scope, tcp_on

# A timer "doubles" when the next wait is at least this many times the previous one: the
# kernel's RTO also moves with its RTT estimate, so exactly 2 is not to be expected.
DOUBLING = 1.5
# The wait after a tail loss probe, against the probe's own: one RTO against one probe
# timeout, about equal on a LAN (both near the kernel's 200 ms floor), never much shorter.
PROBE_THEN_RTO = 0.9
# Slack on top of the configured round trip: scheduling, and the peer's delayed ACK.
RTT_SLACK = 0.05  # seconds


def _client_conns(topo: Topology, ev: Evidence, sc: Scenario) -> tuple[Scope, list[TcpConnection]]:
    found = scope(topo, ev, sc)
    conns: list[TcpConnection] = []
    for client in sc.clients:
        conns += tcp_on(ev, client, found)
    return found, conns


def _none(name: str, found: Scope) -> Check:
    return none_seen(name, found)


# -- retransmission -------------------------------------------------------------------------


def _in_english(problem: Msg | None) -> str | None:
    return None if problem is None else english(problem)


def retransmission_problem(c: TcpConnection) -> str | None:
    """Why ``c`` does not show the client's lost data sent again the course's way."""
    return _in_english(_retransmission_why(c))


def _retransmission_why(c: TcpConnection) -> Msg | None:
    mine = [r for r in c.retransmissions if r.sender == CLIENT and r.payload_len > 0]
    if not mine:
        return msg("detail.resend.none", n=c.originals)
    for r in mine:
        first = next((s for s in c.segments if s.index == r.original_index), None)
        if first is None or first.relative_seq != r.relative_seq:
            return msg("detail.resend.new_seq", index=r.index, seq=r.relative_seq)
    for r in mine:
        if r.kind == "timeout" and r.attempt > 2:
            before = next(
                (
                    p
                    for p in mine
                    if p.relative_seq == r.relative_seq and p.attempt == r.attempt - 1
                ),
                None,
            )
            if not (before and before.since_previous and r.since_previous):
                continue
            # Linux's first resend on a timer is a tail loss probe (RFC 8985): it re-arms
            # the retransmission timer without backing it off, so the second resend comes
            # about as long after it. From the third on, each wait doubles.
            factor = DOUBLING if r.attempt > 3 else PROBE_THEN_RTO
            if r.since_previous < factor * before.since_previous:
                return msg(
                    "detail.resend.timer",
                    seq=r.relative_seq,
                    attempt=r.attempt,
                    since=r.since_previous,
                    before=before.since_previous,
                    did=msg("detail.resend.double" if r.attempt > 3 else "detail.resend.hold"),
                )
    return None


def retransmission_figures(c: TcpConnection) -> Msg:
    """The retransmissions the claim read: when, of which sequence number, after how long."""
    mine = [r for r in c.retransmissions if r.sender == CLIENT and r.payload_len > 0]
    shown = join(
        msg(
            "detail.resend.one",
            seq=r.relative_seq,
            kind=msg(f"detail.resend.kind.{r.kind}"),
            attempt=r.attempt,
            since=r.since_previous or 0,
            dups=msg("detail.resend.dups", n=r.duplicate_acks) if r.kind == "fast" else "",
        )
        for r in mine[:8]
    )
    more = msg("detail.resend.more", n=len(mine) - 8) if len(mine) > 8 else ""
    return msg("detail.resend.all", n=len(mine), once=c.originals, shown=shown, more=more)


def retransmitted(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Lost data is sent again with its original sequence number; a segment lost again
    waits about twice as long (exponential backoff); a fast retransmission follows three
    duplicate ACKs (``Retransmission.kind`` requires it)."""
    name = "retransmission"
    found, conns = _client_conns(topo, ev, sc)
    if not conns:
        return _none(name, found)
    check = first_failure(
        name, conns, _retransmission_why, "lost data resent from the same sequence number"
    )
    if not check.passed:
        return check
    busiest = max(conns, key=lambda c: len(c.retransmissions))
    said = msg("detail.then", a=check.evidence(), b=retransmission_figures(busiest))
    return Check.said(name, True, said)


# -- round trip time ------------------------------------------------------------------------


def expected_rtt(topo: Topology, client: str, server: str) -> float:
    """Seconds netem adds to a round trip between two nodes of one network: each one's
    ingress and egress delay on the network they share, once per direction."""
    shared = set(topo.node(client).networks) & set(topo.node(server).networks)
    return (
        sum(
            i.netem.delay_us
            for i in topo.impairments
            if i.node in (client, server) and i.network in shared
        )
        / 1e6
    )


def rtt_problem(c: TcpConnection, rtt: float) -> str | None:
    """Why ``c``'s handshake or data ACKs do not take one round trip of ``rtt`` seconds."""
    return _in_english(_rtt_why(c, rtt))


def _rtt_why(c: TcpConnection, rtt: float) -> Msg | None:
    if rtt <= 0:
        # Without a delay the claim would hold on any LAN: it would show nothing.
        return msg("said.the topology adds no delay between client and server (netem `delay`)")
    hs = c.handshake
    if hs.syn_time is None or hs.syn_ack_time is None:
        return msg("said.no SYN and SYN-ACK in the client's capture")
    took = hs.syn_ack_time - hs.syn_time
    if not rtt <= took <= rtt + RTT_SLACK:
        return msg("detail.rtt.syn_ack", took=took * 1000, rtt=rtt * 1000)
    for seg in c.data_segments:
        if seg.sender != CLIENT or seg.retransmission:
            continue
        end = seg.relative_seq + seg.payload_len
        ack = next(
            (
                a
                for a in c.segments
                if a.sender == SERVER and a.index > seg.index and (a.relative_ack or 0) >= end
            ),
            None,
        )
        if ack is None:
            return msg("detail.rtt.never_acked", index=seg.index)
        waited = ack.time - seg.time
        if waited < rtt:
            return msg("detail.rtt.early", index=seg.index, waited=waited * 1000, rtt=rtt * 1000)
    return None


def rtt_figures(c: TcpConnection) -> Msg:
    hs = c.handshake
    took = (hs.syn_ack_time or 0) - (hs.syn_time or 0)
    return msg("detail.rtt.took", took=took * 1000)


def one_round_trip(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The SYN-ACK comes one round trip after the SYN (the delays netem adds on the way,
    plus a little), and each of the client's data segments is acknowledged no sooner."""
    name = "one round trip"
    found, conns = _client_conns(topo, ev, sc)
    if not conns:
        return _none(name, found)
    service = topo.service(sc.service)
    rtt = expected_rtt(topo, sc.clients[0], service.node)
    check = first_failure(
        name,
        conns,
        lambda c: _rtt_why(c, rtt),
        msg("detail.rtt.ok", rtt=rtt * 1000),
    )
    if not check.passed:
        return check
    return Check.said(name, True, msg("detail.then", a=check.evidence(), b=rtt_figures(conns[0])))


# -- slow start -----------------------------------------------------------------------------

# Round trips whose growth is judged: the first ones, before the window can level off.
GROWING_ROUNDS = 3
GROWTH = 1.5  # each of them carries at least this many times the one before


def flight_per_round(c: TcpConnection) -> list[int]:
    """The client's most bytes in flight (sent and not yet acknowledged) in each round
    trip after its first data, the round trip being the handshake's (SYN to SYN-ACK)."""
    hs = c.handshake
    if hs.syn_time is None or hs.syn_ack_time is None:
        return []
    rtt = max(hs.syn_ack_time - hs.syn_time, 1e-6)
    data = [s for s in c.data_segments if s.sender == CLIENT]
    if not data:
        return []
    t0, acked, sent = data[0].time, 0, 0
    rounds: list[int] = []
    for seg in c.segments:
        if seg.sender == SERVER and seg.relative_ack is not None:
            acked = max(acked, seg.relative_ack)
        elif seg.sender == CLIENT and seg.payload_len > 0:
            sent = max(sent, seg.relative_seq + seg.payload_len)
            k = int((seg.time - t0) / rtt)
            while len(rounds) <= k:
                rounds.append(0)
            rounds[k] = max(rounds[k], sent - acked)
    return rounds


def slow_start_problem(c: TcpConnection) -> str | None:
    return _in_english(_slow_start_why(c))


def _slow_start_why(c: TcpConnection) -> Msg | None:
    rounds = flight_per_round(c)
    if len(rounds) < GROWING_ROUNDS + 1:
        return msg("detail.slow.few", n=len(rounds))
    first = rounds[: GROWING_ROUNDS + 1]
    for k in range(1, len(first)):
        if first[k] < GROWTH * first[k - 1]:
            return msg("detail.slow.flat", first=first, k1=k + 1, growth=GROWTH, k=k)
    return None


def slow_start(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """In the client's first round trips its bytes in flight grow, each round at least
    1.5 times the one before (slow start doubles the window every round trip)."""
    name = "slow start"
    found, conns = _client_conns(topo, ev, sc)
    if not conns:
        return _none(name, found)
    check = first_failure(
        name, conns, _slow_start_why, "bytes in flight grew round trip after round trip"
    )
    if not check.passed:
        return check
    shown = flight_per_round(max(conns, key=lambda c: c.client_bytes))[:12]
    return Check.said(name, True, msg("detail.slow.ok", said=check.evidence(), shown=shown))
