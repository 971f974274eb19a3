"""Claims on a router between client and server: the same packet, seen on both sides,
keeps its IP addresses, gets new MACs and one less TTL."""

from __future__ import annotations

from lab.evidence.analysis.paths import HopChange, match_connections
from lab.evidence.folder import Evidence
from lab.i18n import Msg, join, msg
from lab.spec.model import Scenario, Topology
from lab.verdict.check import Check
from lab.verdict.scope import scope, tcp_on


def _hops(topo: Topology, ev: Evidence, sc: Scenario) -> tuple[list[Msg], list[HopChange]]:
    """The scenario's connections matched between each client's and the server's capture."""
    found = scope(topo, ev, sc)
    server_side = tcp_on(ev, found.service.node, found)
    problems: list[Msg] = []
    hops: list[HopChange] = []
    for node in sc.clients:
        client_side = tcp_on(ev, node, found)
        matches = match_connections(client_side, server_side, node, found.service.node)
        if not matches:
            problems.append(msg("detail.route.unmatched", node=node))
        for m in matches:
            hops += [h for h in (m.client_to_server, m.server_to_client) if h is not None]
    if not hops and not problems:
        problems.append(msg("said.no packet of the scenario seen in both captures"))
    return problems, hops


def ips_unchanged_macs_rewritten(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The same packet on both sides of the router: same IP addresses, other MACs."""
    name = "IPs unchanged, MACs rewritten"
    problems, hops = _hops(topo, ev, sc)
    if problems:
        return Check.said(name, False, msg("detail.all", items=join(problems)))
    bad = [h for h in hops if h.ips_rewritten or h.macs_rewritten is not True]
    h = (bad or hops)[0]
    up, down = h.upstream, h.downstream
    said = msg(
        "detail.route.macs",
        good=len(hops) - len(bad),
        total=len(hops),
        direction=h.direction,
        flags="+".join(h.flags),
        up=f"{up.src_ip}->{up.dst_ip} {up.src_mac}->{up.dst_mac}",
        up_capture=up.capture,
        down=f"{down.src_ip}->{down.dst_ip} {down.src_mac}->{down.dst_mac}",
        down_capture=down.capture,
    )
    return Check.said(name, not bad, said)


def ttl_decremented(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The same packet on both sides of the router: the TTL is one less downstream."""
    name = "TTL decremented"
    problems, hops = _hops(topo, ev, sc)
    if problems:
        return Check.said(name, False, msg("detail.all", items=join(problems)))
    bad = [h for h in hops if h.ttl_change != -1]
    h = (bad or hops)[0]
    said = msg(
        "detail.route.ttl",
        good=len(hops) - len(bad),
        total=len(hops),
        direction=h.direction,
        up=h.upstream.ttl,
        up_capture=h.upstream.capture,
        down=h.downstream.ttl,
        down_capture=h.downstream.capture,
    )
    return Check.said(name, not bad, said)
