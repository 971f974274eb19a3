"""The claim of the reorder experiment: segments that arrive out of order make the
receiver send duplicate ACKs, each saying with SACK blocks which later data it holds.
Read from the server's capture, where the client's data arrives (reordered by netem on
the server's ingress)."""

from __future__ import annotations

from dataclasses import dataclass

from lab.evidence.analysis.tcp import CLIENT, SERVER, TcpConnection
from lab.evidence.folder import Evidence
from lab.i18n import Msg, msg
from lab.spec.model import Scenario, Topology
from lab.verdict.check import Check, first_failure
from lab.verdict.scope import none_seen, tcp


@dataclass(frozen=True)
class Reordering:
    """What the receiver saw: data arriving ahead of a gap, the ACKs repeating the same
    number meanwhile, and those carrying SACK blocks."""

    ahead: int
    duplicate_acks: int
    with_sack: int


def reordering(c: TcpConnection) -> Reordering:
    ahead = dups = sacked = 0
    # Data starts right after the SYN (relative 1) when the handshake was captured.
    expected: int | None = 1 if c.handshake_seen else None
    last_ack: int | None = None
    for seg in c.segments:
        if seg.sender == CLIENT and seg.payload_len > 0:
            if expected is not None and seg.relative_seq > expected:
                ahead += 1
            end = seg.relative_seq + seg.payload_len
            expected = end if expected is None else max(expected, end)
        elif seg.sender == SERVER and seg.relative_ack is not None:
            pure = seg.payload_len == 0 and not (seg.has("SYN") or seg.has("FIN"))
            if pure and seg.relative_ack == last_ack:
                dups += 1
                sacked += bool(seg.options.sack)
            last_ack = seg.relative_ack
    return Reordering(ahead, dups, sacked)


def _problem(c: TcpConnection) -> Msg | str | None:
    r = reordering(c)
    if not r.ahead:
        return "the client's data always arrived in order at the server"
    if not r.duplicate_acks:
        return msg("detail.reorder.no_dup", n=r.ahead)
    if not r.with_sack:
        return msg("detail.reorder.no_sack", n=r.duplicate_acks)
    return None


def reordered(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Some of the client's data reaches the server ahead of a gap; the server answers
    with duplicate ACKs, and they carry SACK blocks naming the data it holds."""
    name = "reorder"
    found, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen(name, found)
    check = first_failure(name, conns, _problem, "out of order, duplicate ACKs with SACK")
    if not check.passed:
        return check
    r = reordering(max(conns, key=lambda c: reordering(c).ahead))
    said = msg(
        "detail.reorder.ok",
        said=check.evidence(),
        ahead=r.ahead,
        dups=r.duplicate_acks,
        sack=r.with_sack,
    )
    return Check.said(name, True, said)
