"""Claims on a router between client and server: the same packet, seen on both sides,
keeps its IP addresses, gets new MACs and one less TTL."""

from __future__ import annotations

from lab.evidence.analysis.paths import HopChange, match_connections
from lab.evidence.folder import Evidence
from lab.spec.model import Scenario, Topology
from lab.verdict.check import Check
from lab.verdict.scope import scope, tcp_on


def _hops(topo: Topology, ev: Evidence, sc: Scenario) -> tuple[list[str], list[HopChange]]:
    """The scenario's connections matched between each client's and the server's capture."""
    found = scope(topo, ev, sc)
    server_side = tcp_on(ev, found.service.node, found)
    problems: list[str] = []
    hops: list[HopChange] = []
    for node in sc.clients:
        client_side = tcp_on(ev, node, found)
        matches = match_connections(client_side, server_side, node, found.service.node)
        if not matches:
            problems.append(f"no connection seen in both {node}'s and the server's captures")
        for m in matches:
            hops += [h for h in (m.client_to_server, m.server_to_client) if h is not None]
    if not hops and not problems:
        problems.append("no packet of the scenario seen in both captures")
    return problems, hops


def ips_unchanged_macs_rewritten(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The same packet on both sides of the router: same IP addresses, other MACs."""
    name = "IPs unchanged, MACs rewritten"
    problems, hops = _hops(topo, ev, sc)
    if problems:
        return Check(name, False, "; ".join(problems))
    bad = [h for h in hops if h.ips_rewritten or h.macs_rewritten is not True]
    h = (bad or hops)[0]
    up, down = h.upstream, h.downstream
    detail = (
        f"{len(hops) - len(bad)}/{len(hops)} hops; e.g. {h.direction} {'+'.join(h.flags)}: "
        f"{up.src_ip}->{up.dst_ip} {up.src_mac}->{up.dst_mac} on {up.capture}, "
        f"{down.src_ip}->{down.dst_ip} {down.src_mac}->{down.dst_mac} on {down.capture}"
    )
    return Check(name, not bad, detail)


def ttl_decremented(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The same packet on both sides of the router: the TTL is one less downstream."""
    name = "TTL decremented"
    problems, hops = _hops(topo, ev, sc)
    if problems:
        return Check(name, False, "; ".join(problems))
    bad = [h for h in hops if h.ttl_change != -1]
    h = (bad or hops)[0]
    detail = (
        f"{len(hops) - len(bad)}/{len(hops)} hops one less; e.g. {h.direction}: TTL "
        f"{h.upstream.ttl} on {h.upstream.capture} -> {h.downstream.ttl} on {h.downstream.capture}"
    )
    return Check(name, not bad, detail)
