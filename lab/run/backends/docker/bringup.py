"""Creating a run's networks and containers, and the script that sets a node up."""

from __future__ import annotations

from ipaddress import IPv4Network

import docker
import docker.errors
import docker.types

from lab.errors import BackendError
from lab.run.backends.docker.engine import (
    ENGINE_ERRORS,
    NETWORK_LABEL,
    NODE_LABEL,
    engine,
    object_name,
    run_labels,
)
from lab.spec.model import Network, Node, Topology

CAPABILITIES = ["NET_ADMIN", "NET_RAW", "SETUID", "SETGID", "CHOWN", "KILL"]
# Where a user's program runs, unprivileged (lab.run.runuid): its /proc/PID/fd is a folder
# of that uid's (mode 0500) whose links are behind a ptrace check. Without these, ss -p
# names no process of it, lab.programs.userclient finds no client port of its copies, and
# the grader counts none of its descriptors (a leak would go unseen).
USER_PROGRAM_CAPABILITIES = ["DAC_READ_SEARCH", "SYS_PTRACE"]
MEMORY_LIMIT = "256m"
PIDS_LIMIT = 1024  # the thread server's threads count here too
SUBNET_LABEL = "socket-lab.subnet"
PLACEHOLDER_TRIES = 256

# Run with python3 on a node at start. argv[1] is JSON: the directories to create, then for
# each network [name, MAC, address/prefix, MTU or null]: that interface's placeholder address
# is replaced by the real one, and a network's MTU set with one segment per packet (see
# lab.run.backends.netns.build._link_options). The engine's default route goes with the
# placeholder; the node's own gateway, if any, becomes the default route.
# Prints {network: interface name}.
NODE_SETUP = """
import json, os, subprocess, sys
spec = json.loads(sys.argv[1])
for d in spec["dirs"]:
    os.makedirs(d, exist_ok=True)
by_mac = {}
for dev in os.listdir("/sys/class/net"):
    with open(f"/sys/class/net/{dev}/address") as f:
        by_mac[f.read().strip().lower()] = dev
def ip(*args):
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"ip {' '.join(args)}: {done.stderr.strip()}")
names = {}
for net, mac, cidr, mtu in spec["addresses"]:
    if mac not in by_mac:
        sys.exit(f"no interface with MAC {mac} for network {net}")
    dev = names[net] = by_mac[mac]
    ip("-4", "addr", "flush", "dev", dev)
    ip("addr", "add", cidr, "dev", dev)
    if mtu:
        ip("link", "set", "dev", dev, "mtu", str(mtu), "gso_max_segs", "1")
if spec["gateway"]:
    ip("route", "replace", "default", "via", spec["gateway"])
print(json.dumps(names))
"""

# Prints {MAC: interface name} for the node's interfaces.
LIST_LINKS = """
import json, os
out = {}
for dev in os.listdir("/sys/class/net"):
    with open(f"/sys/class/net/{dev}/address") as f:
        out[f.read().strip().lower()] = dev
print(json.dumps(out))
"""

PLACEHOLDER_RANGE = IPv4Network("198.18.0.0/15")


def placeholder_subnets(attached: int, seed: int) -> list[IPv4Network]:
    """Candidate bridge subnets big enough for ``attached`` containers plus the engine's
    gateway, starting at a run-dependent offset so that concurrent runs rarely race."""
    need = attached + 3  # network and broadcast addresses, and the bridge's own
    prefix = min(29, 32 - (need - 1).bit_length())
    candidates = list(PLACEHOLDER_RANGE.subnets(new_prefix=prefix))
    start = seed % len(candidates)
    return candidates[start:] + candidates[:start]


def _mtu_option(net: Network) -> dict[str, str]:
    return {} if net.mtu is None else {"com.docker.network.driver.mtu": str(net.mtu)}


def create_network(
    api: docker.APIClient, run_id: str, topology: Topology, net: Network, seed: int
) -> IPv4Network | None:
    """Create ``net``'s bridge on the first free placeholder subnet from ``seed``; that subnet."""
    attached = sum(1 for n in topology.nodes if net.name in n.networks)
    for attempt, subnet in enumerate(placeholder_subnets(attached, seed)):
        pool = docker.types.IPAMPool(subnet=str(subnet))
        try:
            api.create_network(
                object_name(run_id, net.name),
                driver="bridge",
                ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                options={
                    # No NAT: nothing leaves the lab's bridges through the host.
                    "com.docker.network.bridge.enable_ip_masquerade": "false",
                    "com.docker.network.bridge.enable_icc": "true",
                    # The bridge and the host's veth ends take the network's MTU too.
                    **_mtu_option(net),
                },
                labels=run_labels(
                    run_id, topology, **{NETWORK_LABEL: net.name, SUBNET_LABEL: str(net.subnet)}
                ),
                check_duplicate=True,
            )
        except docker.errors.APIError as exc:
            # Another network (maybe another run's) holds this placeholder: next one.
            if "overlap" in str(exc.explanation) and attempt < PLACEHOLDER_TRIES:
                continue
            raise BackendError(
                f"docker: creating network {net.name}: {exc.explanation or exc}"
            ) from exc
        except ENGINE_ERRORS as exc:
            raise BackendError(f"docker: creating network {net.name}: {exc}") from exc
        return subnet
    return None


def user_program_capabilities(topology: Topology, node: str) -> list[str]:
    """What a node running a user's program (server or client) needs besides the lab's own."""
    return USER_PROGRAM_CAPABILITIES if node in topology.user_program_nodes() else []


def create_node(
    api: docker.APIClient,
    run_id: str,
    topology: Topology,
    node: Node,
    image: str,
    *,
    labels: dict[str, str] | None = None,
) -> None:
    """Create and start ``node``'s container, attached to all its networks; ``labels``
    replace the docker backend's own."""
    first, *rest = node.interfaces
    host_config = api.create_host_config(
        network_mode=object_name(run_id, first.network),
        init=True,
        cap_drop=["ALL"],
        cap_add=CAPABILITIES + user_program_capabilities(topology, node.name),
        mem_limit=MEMORY_LIMIT,
        pids_limit=PIDS_LIMIT,
        # Explicit either way: a new network namespace inherits the host's setting,
        # and a host running Docker forwards.
        sysctls={"net.ipv4.ip_forward": "1" if node.router else "0"},
        # Names the engine's resolver cannot answer go nowhere (not to the host's DNS).
        dns=["127.0.0.1"],
    )
    endpoint = api.create_endpoint_config()
    with engine(f"creating container for node {node.name}"):
        container = api.create_container(
            image,
            command=["sleep", "infinity"],
            name=object_name(run_id, node.name),
            hostname=node.name,
            labels=labels or run_labels(run_id, topology, **{NODE_LABEL: node.name}),
            host_config=host_config,
            networking_config={"EndpointsConfig": {object_name(run_id, first.network): endpoint}},
        )
        for iface in rest:
            api.connect_container_to_network(container["Id"], object_name(run_id, iface.network))
        api.start(container["Id"])
