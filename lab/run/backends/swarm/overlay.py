"""A run's overlay networks, made through a swarm manager, and the nodes' neighbours on them.

Each overlay network is attachable (plain containers join it, no service needed) and
internal (no ``docker_gwbridge`` leg: no route out of the lab). Its IPAM subnet is a
placeholder from 198.18.0.0/15, as on the docker backend, and the node's real address
replaces the placeholder inside the container: the swarm's IPAM shares one address pool
between networks of the same subnet, so a second run of a topology could not get its
fixed addresses ("attaching to network failed"), and the swarm also takes a gateway and
one load-balancer address per engine from the subnet. The overlay's VXLAN device answers
ARP itself, for the addresses the engine gave out only; so each node gets a permanent
neighbour entry for every other node on each of its networks.

Overlay networks carry VXLAN over UDP: their MTU is 1450, which a handshake's MSS shows
(1410, not 1460; 1398 bytes of data per segment with TCP timestamps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from ipaddress import IPv4Network

import docker.types

from lab.errors import BackendError
from lab.run.backends.docker.bringup import PLACEHOLDER_RANGE, SUBNET_LABEL
from lab.run.backends.docker.engine import NETWORK_LABEL, engine, object_name, run_labels
from lab.run.backends.swarm.cluster import Engine
from lab.spec.model import Network, Node, Topology

OVERLAY_MTU = 1450
NO_INGRESS = (
    "netem ingress is not available on the swarm backend (an overlay link's far end is "
    "inside the engine's own namespace): impair the sender's egress, or choose --backend "
    "docker or netns"
)


def placeholder(
    net: Network, attached: int, engines: int, seed: int, taken: Sequence[IPv4Network]
) -> IPv4Network:
    """A placeholder subnet for ``net`` that overlaps no network the manager has: room for
    its nodes, the gateway and a load-balancer address per engine."""
    need = attached + engines + 3
    prefix = min(28, 32 - (need - 1).bit_length())
    candidates = list(PLACEHOLDER_RANGE.subnets(new_prefix=prefix))
    start = seed % len(candidates)
    for subnet in candidates[start:] + candidates[:start]:
        if not any(subnet.overlaps(t) for t in taken):
            return subnet
    raise BackendError(f"no free placeholder subnet in {PLACEHOLDER_RANGE} for {net.name}")


def taken_subnets(manager: Engine) -> list[IPv4Network]:
    with engine(f"listing the networks of {manager.where()}"):
        found = manager.api.networks()
    subnets = []
    for n in found:
        for conf in (n.get("IPAM") or {}).get("Config") or []:
            with suppress(ValueError):
                subnets.append(IPv4Network(str(conf.get("Subnet")), strict=False))
    return subnets


def problems(topology: Topology, names: Sequence[str] | None) -> list[str]:
    """What the swarm backend refuses in a topology, before anything is made."""
    found = []
    ingress = sorted({i.node for i in topology.impairments if i.direction == "ingress"})
    ingress += sorted(
        {st.node for sc in topology.scenarios for st in sc.impair if st.direction == "ingress"}
    )
    if ingress:
        found.append(f"{NO_INGRESS} (ingress netem on {', '.join(dict.fromkeys(ingress))})")
    for net in topology.networks:
        if net.mtu is not None and net.mtu > OVERLAY_MTU:
            found.append(
                f"network {net.name}: mtu {net.mtu} is above the overlay's {OVERLAY_MTU} "
                "(VXLAN's 50 bytes of headers ride inside the engines' own 1500)"
            )
    if names is not None:
        for node in topology.nodes:
            if node.engine is not None and node.engine not in names:
                found.append(
                    f"node {node.name}: engine {node.engine!r} is not in the engines file "
                    f"(engines: {', '.join(names)})"
                )
    return found


def create_network(
    manager: Engine, run_id: str, topology: Topology, net: Network, subnet: IPv4Network
) -> None:
    options = {} if net.mtu is None else {"com.docker.network.driver.mtu": str(net.mtu)}
    labels = run_labels(
        run_id, topology, "swarm", **{NETWORK_LABEL: net.name, SUBNET_LABEL: str(net.subnet)}
    )
    with engine(f"creating overlay network {net.name} on {manager.where()}"):
        manager.api.create_network(
            object_name(run_id, net.name),
            driver="overlay",
            attachable=True,
            internal=True,
            ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(subnet))]),
            options=options,
            labels=labels,
            check_duplicate=True,
        )


# Run with python3 on a node: argv[1] is JSON [[interface, address, MAC], ...], each made
# a permanent neighbour of the node on that interface.
NEIGHBOURS = """
import json, subprocess, sys
for dev, addr, mac in json.loads(sys.argv[1]):
    done = subprocess.run(["ip", "neigh", "replace", addr, "lladdr", mac, "dev", dev,
                           "nud", "permanent"], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"ip neigh replace {addr} dev {dev}: {done.stderr.strip()}")
"""


def neighbours(
    topology: Topology, node: Node, ifaces: Mapping[str, str], macs: Mapping[str, Mapping[str, str]]
) -> list[list[str]]:
    """``node``'s neighbour entries: each other node on each of its networks, by the MAC
    the engine gave that node's interface there (``macs``: node -> network -> MAC)."""
    entries = []
    for iface in node.interfaces:
        for other in topology.nodes:
            addr = other.address_on(iface.network)
            if other.name == node.name or addr is None:
                continue
            entries.append([ifaces[iface.network], str(addr), macs[other.name][iface.network]])
    return entries
