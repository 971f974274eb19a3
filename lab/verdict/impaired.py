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
            if (
                before
                and before.since_previous
                and r.since_previous
                and r.since_previous < DOUBLING * before.since_previous
            ):
                return (
                    f"sequence {r.relative_seq}: send {r.attempt} came "
                    f"{r.since_previous:.3f} s after the previous, which came "
                    f"{before.since_previous:.3f} s after its own: the timer did not double"
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
