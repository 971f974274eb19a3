"""Claims on the MSS: the handshake announces it from the link's MTU, and a write larger
than it leaves as segments no larger than it.

Both read the server's capture. The lab gives a network with an ``mtu`` one segment per
packet (``gso_max_segs 1``), so its captures hold the segments the link carries; without
that a veth hands tcpdump packets of many MSS, and ``segments-within-mss`` would say so.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.evidence.analysis.tcp import CLIENT, SERVER, TcpConnection
from lab.evidence.folder import Evidence
from lab.i18n import Msg, msg
from lab.spec.model import Scenario, Topology
from lab.verdict.check import Check, first_failure
from lab.verdict.scope import none_seen, tcp

# IPv4 and TCP headers without options: what the MSS leaves out of the MTU.
HEADERS = 20 + 20
DEFAULT_MTU = 1500


def link_mtu(topo: Topology, sc: Scenario) -> int:
    """The MTU of the network the server's first interface is on (the one clients dial)."""
    server = topo.node(topo.service(sc.service).node)
    return topo.network(server.interfaces[0].network).mtu or DEFAULT_MTU


def _mss_problem(c: TcpConnection, want: int) -> Msg | str | None:
    hs = c.handshake
    if hs.syn_index is None or hs.syn_ack_index is None:
        return "no SYN and SYN-ACK in the capture"
    got = {"SYN": hs.client_mss, "SYN-ACK": hs.server_mss}
    wrong = [f"{k} MSS {v}" for k, v in got.items() if v != want]
    return msg("detail.mss.wrong", wrong=", ".join(wrong), want=want) if wrong else None


def mss_follows_mtu(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Both SYNs announce MSS = the network's MTU - 40 (IPv4 and TCP headers)."""
    name = "MSS follows the MTU"
    mtu = link_mtu(topo, sc)
    scope, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen(name, scope)
    want = mtu - HEADERS
    ok = msg("detail.mss.ok", want=want, mtu=mtu, headers=HEADERS)
    return first_failure(name, conns, lambda c: _mss_problem(c, want), ok)


@dataclass(frozen=True)
class _Sizes:
    """One direction's data segments: the peer's announced MSS and the payload sizes."""

    mss: int | None
    sizes: list[int]

    @property
    def largest(self) -> int:
        return max(self.sizes, default=0)


def _sizes(c: TcpConnection, sender: str) -> _Sizes:
    # What a side may send is bounded by the MSS its peer announced.
    peer_mss = c.handshake.server_mss if sender == CLIENT else c.handshake.client_mss
    sizes = [s.payload_len for s in c.segments if s.sender == sender and s.payload_len]
    return _Sizes(peer_mss, sizes)


def _within_problem(c: TcpConnection) -> Msg | None:
    for sender in (CLIENT, SERVER):
        got = _sizes(c, sender)
        side = msg(f"side.{sender}")
        if got.mss is None:
            return msg("detail.mss.none_to", side=side)
        if got.largest > got.mss:
            return msg("detail.mss.larger", side=side, n=got.largest, mss=got.mss)
        # Else nothing had to be cut: the claim would hold for any MSS.
        if sum(got.sizes) <= got.mss:
            return msg("detail.mss.small", side=side, n=sum(got.sizes), mss=got.mss)
    return None


def _largest_write(sc: Scenario) -> int:
    """The longest line the scenario's client writes at once, newline included."""
    return max((len(t.encode("utf-8")) + 1 for t in sc.send), default=0)


def segments_within_mss(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Every data segment each way carries at most the MSS its receiver announced, so
    each line longer than the MSS left as several segments."""
    name = "segments within the MSS"
    scope, conns = tcp(topo, ev, sc)
    if not conns:
        return none_seen(name, scope)
    write = _largest_write(sc)
    check = first_failure(name, conns, _within_problem, "")
    if not check.passed:
        return check
    sent = _sizes(conns[0], CLIENT)
    back = _sizes(conns[0], SERVER)
    said = msg(
        "detail.mss.within",
        n=len(conns),
        write=write,
        segs=len(sent.sizes),
        largest=sent.largest,
        mss=sent.mss,
        total=sum(sent.sizes),
        back=len(back.sizes),
        back_largest=back.largest,
    )
    return Check.said(name, True, said)
