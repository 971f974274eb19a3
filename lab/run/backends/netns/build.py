"""What ``up`` makes: node directories, sysctls, bridges and veth pairs, addresses."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from lab.errors import BackendError, UsageError
from lab.run.backends import kernel
from lab.run.backends.base import Owner
from lab.run.backends.netns import nonetem
from lab.run.backends.netns.enter import in_namespaces, ip_batch, write_sysctls
from lab.run.backends.netns.iproute import check_token, run_ip, run_parallel
from lab.run.backends.netns.names import (
    BASE_DIR,
    IFNAMSIZ,
    NETNS_DIR,
    NODE_RE,
    OWNER_FILE,
    SWITCH,
    bridge_name,
    ns_name,
    veth_name,
)
from lab.spec.model import Topology
from lab.spec.netem import NO_NETEM, Direction, Netem

# Bridges: no STP delay; no multicast snooping (a snooping bridge joins 224.0.0.106 and
# its IGMP reports would land in every node's capture); no netfilter on bridged frames
# (see the package docstring: the switch's namespace also turns it off as a whole).
BRIDGE_OPTIONS = (
    "type bridge forward_delay 0 mcast_snooping 0"
    " nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0"
)


@dataclass(frozen=True)
class Attachment:
    """One node interface: the veth pair that joins node ``node`` to bridge ``bridge``."""

    node: str
    ifname: str
    veth: str
    bridge: str
    cidr: str
    network: str = ""


def build_run(run_id: str, topology: Topology) -> None:
    """Create everything of run ``run_id`` for ``topology``; names are checked first."""
    attachments = plan(run_id, topology)
    make_dirs(run_id, topology)
    names = [SWITCH, *(n.name for n in topology.nodes)]
    run_ip([], batch=[f"netns add {ns_name(run_id, n)}" for n in names])
    switch_sysctls(run_id)
    run_ip(["-n", ns_name(run_id, SWITCH)], batch=link_batch(run_id, topology, attachments))
    configure_nodes(run_id, topology, attachments)
    for imp in topology.impairments:
        set_netem(run_id, attachments, imp.node, imp.network, imp.direction, imp.netem)


def plan(run_id: str, topology: Topology) -> list[Attachment]:
    """Names and addresses of every link, checked before anything is created."""
    bridges = {net.name: bridge_name(run_id, k) for k, net in enumerate(topology.networks)}
    plan: list[Attachment] = []
    for node in topology.nodes:
        if not NODE_RE.match(node.name):
            raise BackendError(f"invalid node name {node.name!r}")
        for k, iface in enumerate(node.interfaces):
            if iface.network not in bridges:
                raise BackendError(f"node {node.name}: no network {iface.network!r}")
            prefix = topology.network(iface.network).subnet.prefixlen
            veth = veth_name(run_id, len(plan))
            plan.append(
                Attachment(
                    node.name,
                    f"eth{k}",
                    veth,
                    bridges[iface.network],
                    f"{iface.address}/{prefix}",
                    iface.network,
                )
            )
    longest = max([*bridges.values(), *(a.veth for a in plan)], key=len, default="")
    if len(longest) > IFNAMSIZ:
        raise BackendError(f"too many networks or interfaces: {longest} exceeds 15 characters")
    return plan


def make_dirs(run_id: str, topology: Topology) -> None:
    """Create the run's node directories, refusing a base directory someone else owns."""
    BASE_DIR.mkdir(mode=0o755, exist_ok=True)
    st = os.lstat(BASE_DIR)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise BackendError(f"{BASE_DIR} is not a directory owned by this user; remove it")
    run_dir = BASE_DIR / run_id
    run_dir.mkdir(mode=0o755, exist_ok=True)
    # Before any namespace: `lab clean` spares a run whose maker lives, registered or not.
    owner = Owner.me()
    (run_dir / OWNER_FILE).write_text(json.dumps({"pid": owner.pid, "start": owner.start}))
    for node in topology.nodes:
        wd = run_dir / node.name
        # Writable by root alone: tcpdump runs with ``-Z root`` (lab.run.collect), so it
        # does not drop to a user of its own that would need a world-writable folder.
        wd.mkdir(mode=0o755, exist_ok=True)
        os.chmod(wd, 0o755)  # noqa: S103 - readable by all, as the results will be


def switch_sysctls(run_id: str) -> None:
    """In the switch: no forwarding, no IPv6, no netfilter for bridged frames (``-e``:
    those keys exist only with br_netfilter)."""
    switch = [
        "ip", "netns", "exec", ns_name(run_id, SWITCH),
        "sysctl", "-q", "-e", "-w",
        "net.ipv4.ip_forward=0",
        "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1",
        "net.bridge.bridge-nf-call-iptables=0",
        "net.bridge.bridge-nf-call-ip6tables=0",
        "net.bridge.bridge-nf-call-arptables=0",
    ]  # fmt: skip
    run_parallel([(switch, None)], "setting sysctls")


def node_sysctls(router: bool) -> dict[str, str]:
    """Forwarding on routers only (a new namespace may inherit the host's 1), IPv6 off.
    Set before any interface of the node is up: ``all`` turns IPv6 off on the interfaces
    already there (down, so with no address yet), ``default`` on any made later."""
    return {
        "net.ipv4.ip_forward": "1" if router else "0",
        "net.ipv6.conf.all.disable_ipv6": "1",
        "net.ipv6.conf.default.disable_ipv6": "1",
    }


def link_batch(run_id: str, topology: Topology, plan: Sequence[Attachment]) -> list[str]:
    """``ip -batch`` lines for bridges and veth pairs, run in the switch's namespace."""
    lines: list[str] = []
    for k in range(len(topology.networks)):
        br = bridge_name(run_id, k)
        lines += [f"link add name {br} {BRIDGE_OPTIONS}", f"link set dev {br} up"]
    for a in plan:
        ns = check_token(ns_name(run_id, a.node))
        link = _link_options(topology.network(a.network).mtu)
        lines += [
            # The peer is born inside the node, so no temporary name is ever needed.
            f"link add name {a.veth}{link} type veth peer name {a.ifname}{link} netns {ns}",
            f"link set dev {a.veth} master {a.bridge} up",
        ]
    return lines


def _link_options(mtu: int | None) -> str:
    """A network's MTU for both ends of a veth. A veth offloads segmentation, so TCP would
    hand it (and tcpdump would show) packets of many MSS; one segment per packet
    (``gso_max_segs 1``) makes the capture show what a real link of that MTU carries."""
    return "" if mtu is None else f" mtu {int(mtu)} gso_max_segs 1"


def configure_nodes(run_id: str, topology: Topology, plan: Sequence[Attachment]) -> None:
    """Inside each namespace: sysctls, lo up, addresses, interfaces up, default route."""
    jobs = []
    for node in topology.nodes:
        lines = ["link set dev lo up"]
        for a in plan:
            if a.node == node.name:
                lines += [
                    f"address add {check_token(a.cidr)} dev {a.ifname}",
                    f"link set dev {a.ifname} up",
                ]
        if node.gateway is not None:
            lines.append(f"route add default via {check_token(str(node.gateway))}")
        sysctls = node_sysctls(node.router)
        jobs.append((NETNS_DIR / ns_name(run_id, node.name), partial(configure, sysctls, lines)))
    in_namespaces(jobs, "configuring nodes")


def configure(sysctls: dict[str, str], lines: Sequence[str]) -> None:
    """One node, from a thread inside its namespace: its sysctls, then its ``ip`` lines."""
    write_sysctls(sysctls)
    ip_batch(lines)


def netem_device(
    run_id: str, plan: Sequence[Attachment], node: str, network: str, direction: Direction
) -> tuple[str, str]:
    """(namespace, interface) whose root qdisc impairs ``node`` on ``network``: what the
    node receives is shaped where the bridge sends it (the switch's end of the veth), so
    the sender's capture still holds a packet that is lost; what it sends, on its own end."""
    for a in plan:
        if a.node == node and a.network == network:
            if direction == "ingress":
                return ns_name(run_id, SWITCH), a.veth
            return ns_name(run_id, node), a.ifname
    raise UsageError(f"node {node} has no interface on network {network!r}")


def set_netem(
    run_id: str,
    plan: Sequence[Attachment],
    node: str,
    network: str,
    direction: Direction,
    netem: Netem | None,
) -> None:
    """Replace (or with ``None`` remove) the netem qdisc of one interface and direction;
    on a kernel without netem, what ``nonetem`` can make instead."""
    ns, dev = netem_device(run_id, plan, node, network, direction)
    if not kernel.kernel_has_netem():
        veth = next(a.veth for a in plan if a.node == node and a.network == network)
        where = f"{node}'s {network} {direction}"
        nonetem.apply(ns_name(run_id, SWITCH), veth, (ns, dev), direction, netem, where)
        return
    tc = ["ip", "netns", "exec", ns, "tc", "qdisc"]
    if netem is None:
        argv = [*tc, "del", "dev", dev, "root"]
    else:
        argv = [*tc, "replace", "dev", dev, "root", *netem.tc_args()]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"{' '.join(argv)}: {exc}") from exc
    # Removing a qdisc that is not there is what was asked for.
    absent = netem is None and ("No such file" in done.stderr or "handle of zero" in done.stderr)
    if done.returncode != 0 and "qdisc kind is unknown" in done.stderr:
        raise BackendError(NO_NETEM)
    if done.returncode != 0 and not absent:
        raise BackendError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
