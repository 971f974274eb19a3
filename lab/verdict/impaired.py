"""Claims on impaired links (``netem``): a lost segment is sent again, with the same
sequence number, on a timer that doubles; a round trip takes the delay the link adds; the
sender's bytes in flight per round trip grow in slow start.

All read the client's capture: the client sends the data, and the loss is applied where the
server receives (its ingress), so the client's capture holds every segment it sent."""

from __future__ import annotations

from lab.evidence.analysis.tcp import CLIENT, SERVER, TcpConnection
from lab.evidence.folder import Evidence
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


def retransmission_problem(c: TcpConnection) -> str | None:
    """Why ``c`` does not show the client's lost data sent again the course's way."""
    mine = [r for r in c.retransmissions if r.sender == CLIENT and r.payload_len > 0]
    if not mine:
        return f"the client sent {c.originals} segments and none of its data twice"
    for r in mine:
        first = next((s for s in c.segments if s.index == r.original_index), None)
        if first is None or first.relative_seq != r.relative_seq:
            return f"#{r.index} resends sequence {r.relative_seq}, never sent from there before"
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
                return (
                    f"sequence {r.relative_seq}: send {r.attempt} came "
                    f"{r.since_previous:.3f} s after the previous, which came "
                    f"{before.since_previous:.3f} s after its own: the timer did not "
                    + ("double" if r.attempt > 3 else "hold (it shrank)")
                )
    return None


def retransmission_figures(c: TcpConnection) -> str:
    """The retransmissions the claim read: when, of which sequence number, after how long."""
    mine = [r for r in c.retransmissions if r.sender == CLIENT and r.payload_len > 0]
    shown = "; ".join(
        f"seq {r.relative_seq} {r.kind} #{r.attempt} after {r.since_previous or 0:.3f} s"
        + (f" ({r.duplicate_acks} dup ACKs)" if r.kind == "fast" else "")
        for r in mine[:8]
    )
    more = f" (+{len(mine) - 8} more)" if len(mine) > 8 else ""
    return f"{len(mine)} resent of {c.originals} sent once: {shown}{more}"


def retransmitted(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Lost data is sent again with its original sequence number; a segment lost again
    waits about twice as long (exponential backoff); a fast retransmission follows three
    duplicate ACKs (``Retransmission.kind`` requires it)."""
    name = "retransmission"
    found, conns = _client_conns(topo, ev, sc)
    if not conns:
        return _none(name, found)
    check = first_failure(
        name, conns, retransmission_problem, "lost data resent from the same sequence number"
    )
    if not check.passed:
        return check
    busiest = max(conns, key=lambda c: len(c.retransmissions))
    return Check(name, True, f"{check.detail}; {retransmission_figures(busiest)}")


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
    if rtt <= 0:
        # Without a delay the claim would hold on any LAN: it would show nothing.
        return "the topology adds no delay between client and server (netem `delay`)"
    hs = c.handshake
    if hs.syn_time is None or hs.syn_ack_time is None:
        return "no SYN and SYN-ACK in the client's capture"
    took = hs.syn_ack_time - hs.syn_time
    if not rtt <= took <= rtt + RTT_SLACK:
        return (
            f"the SYN-ACK came {took * 1000:.1f} ms after the SYN, not one round trip "
            f"({rtt * 1000:.0f} ms)"
        )
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
            return f"the client's data #{seg.index} was never acknowledged"
        waited = ack.time - seg.time
        if waited < rtt:
            return (
                f"the client's data #{seg.index} was acknowledged {waited * 1000:.1f} ms later, "
                f"less than a round trip ({rtt * 1000:.0f} ms)"
            )
    return None


def rtt_figures(c: TcpConnection) -> str:
    hs = c.handshake
    took = (hs.syn_ack_time or 0) - (hs.syn_time or 0)
    return f"SYN -> SYN-ACK {took * 1000:.1f} ms"


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
        lambda c: rtt_problem(c, rtt),
        f"handshake and data ACKs took one round trip ({rtt * 1000:.0f} ms)",
    )
    if not check.passed:
        return check
    return Check(name, True, f"{check.detail}; {rtt_figures(conns[0])}")


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
    rounds = flight_per_round(c)
    if len(rounds) < GROWING_ROUNDS + 1:
        return f"the client's data took {len(rounds)} round trips, too few to see growth"
    first = rounds[: GROWING_ROUNDS + 1]
    for k in range(1, len(first)):
        if first[k] < GROWTH * first[k - 1]:
            return (
                f"bytes in flight per round trip {first}: round {k + 1} is not "
                f"{GROWTH} times round {k}"
            )
    return None


def slow_start(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """In the client's first round trips its bytes in flight grow, each round at least
    1.5 times the one before (slow start doubles the window every round trip)."""
    name = "slow start"
    found, conns = _client_conns(topo, ev, sc)
    if not conns:
        return _none(name, found)
    check = first_failure(
        name, conns, slow_start_problem, "bytes in flight grew round trip after round trip"
    )
    if not check.passed:
        return check
    shown = flight_per_round(max(conns, key=lambda c: c.client_bytes))[:12]
    return Check(name, True, f"{check.detail}; bytes in flight per round trip: {shown}")
