"""The kernel's ephemeral port range, read on the client nodes of a scenario that makes a
claim about it (``ephemeral-ports``), once, with the ``before`` snapshots: the file
``<node>/snapshots/before.portrange.txt`` holds ``ip_local_port_range`` as read there
(two numbers, low and high). Other runs read nothing more than before."""

from __future__ import annotations

from lab.spec.model import Topology

PORT_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
PORT_RANGE_PHASE, PORT_RANGE_KIND = "before", "portrange"
PORT_RANGE_CLAIM = "ephemeral-ports"


def port_range_jobs(
    topology: Topology, phase: str, nodes: list[str]
) -> list[tuple[str, str, list[str]]]:
    """The snapshot jobs (node, kind, argv) that read the range in ``phase`` on ``nodes``."""
    if phase != PORT_RANGE_PHASE:
        return []
    wanted = {n for sc in topology.scenarios if PORT_RANGE_CLAIM in sc.claims for n in sc.clients}
    return [(n, PORT_RANGE_KIND, ["cat", PORT_RANGE_FILE]) for n in nodes if n in wanted]
