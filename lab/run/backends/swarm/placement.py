"""Which engine runs each node: the node's own ``engine:``, else spread so that every
scenario's server and its clients sit on different engines where the swarm has more
than one, and the engines carry about as many nodes each."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from lab.spec.model import Topology


def opposites(topology: Topology) -> dict[str, set[str]]:
    """Node -> the nodes it must not share an engine with: a scenario's server and clients."""
    server_of = {s.name: s.node for s in topology.services}
    apart: dict[str, set[str]] = defaultdict(set)
    for sc in topology.scenarios:
        server = server_of.get(sc.service)
        if server is None:
            continue
        for client in sc.clients:
            if client != server:
                apart[server].add(client)
                apart[client].add(server)
    return apart


def place(topology: Topology, engines: Sequence[str], fixed: Mapping[str, str]) -> dict[str, str]:
    """Node name -> engine name. ``fixed`` holds the nodes placed by the file (already
    resolved to names of ``engines``); servers are placed next, then every other node."""
    apart = opposites(topology)
    servers = {s.node for s in topology.services}
    order = sorted(
        (n.name for n in topology.nodes),
        key=lambda n: (n not in fixed, n not in servers, not apart.get(n)),
    )
    placed: dict[str, str] = {}
    load: Counter[str] = Counter()
    for node in order:
        if node in fixed:
            choice = fixed[node]
        else:
            taken = {placed[o] for o in apart.get(node, ()) if o in placed}
            free = [e for e in engines if e not in taken] or list(engines)
            choice = min(free, key=lambda e: (load[e], engines.index(e)))
        placed[node] = choice
        load[choice] += 1
    return {n.name: placed[n.name] for n in topology.nodes}
