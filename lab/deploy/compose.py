"""A topology as a compose file: ``docker compose up`` / ``docker-compose up`` runs it live.

Every node becomes one container of the node image running ``lab.programs.supervise``,
which gets everything it runs as an argument list (no shell, so no topology value is ever
parsed by one): the node's servers, its clients (one after another, printing what they get
back), tcpdump on each interface into ``results/compose/<node>/``, and the default route
through the node's gateway. Nodes that serve or route have a health check; nodes that run
clients start once those are healthy. Networks are bridges with the topology's subnets and
fixed addresses, as ``lab run --backend docker`` makes them: not ``internal`` (the
engine's isolation rules for internal networks drop what a router container forwards, on
hosts that filter bridged traffic) but without masquerading, so nothing leaves the lab
through the host's NAT.

The file follows the Compose Specification (no ``version`` key): the compose v2 plugin and
docker-compose 1.29 both read it, with ``init``, ``mem_limit``, ``pids_limit`` and
``depends_on`` conditions.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from lab.deploy.compose_phases import (
    DONE,
    PREPARE,
    PYTHON,
    RESULTS_IN_CONTAINER,
    RESULTS_ROOT,
    ComposeError,
    lab_services,
    phase_options,
    program_argv,
    refuse_unsupported,
    start_after,
)
from lab.deploy.compose_user import (
    TMPFS_EXEC,
    build_options,
    restart_options,
    service_argv,
    source_mounts,
    user_caps,
    user_client_argv,
    user_service_options,
)
from lab.deploy.compose_yaml import Command, emit
from lab.spec.model import Network, Node, Scenario, Service, Topology

__all__ = ["Command", "ComposeError", "compose_dict", "compose_text", "emit"]

DEFAULT_IMAGE = "socket-lab-node:latest"
DEFAULT_REPORT_IMAGE = "socket-lab-report:latest"
RESULTS_MOUNT = f"./results:{RESULTS_ROOT}"
MEMORY_LIMIT = "256m"
# Processes and threads a node needs besides its servers' and clients' own per-connection
# ones (supervisor, tcpdumps, pumping threads, health checks).
BASE_PIDS = 128
LABEL_TOPOLOGY = "socket-lab.topology"
MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
MTU = "com.docker.network.driver.mtu"
LABEL_NODE = "socket-lab.node"
HEALTHCHECK = {"interval": "1s", "timeout": "5s", "retries": 60}
REGENERATE = "lab compose {source} > compose.yaml"


# -- what runs on a node --------------------------------------------------------------------


def client_argv(topology: Topology, scenario: Scenario, node: str) -> list[str]:
    """The client command ``lab run`` uses (``lab.run.clients``), printing JSON."""
    service = topology.service(scenario.service)
    target = str(topology.target_address(service, node))
    timeout = ["--timeout", f"{scenario.reply_timeout:g}"]
    if scenario.probe is not None:
        port = str(topology.scenario_port(scenario))
        probe = [scenario.probe, "--host", target, "--port", port, "--json", "--attempts", "10"]
        return program_argv("probe", [*probe, *timeout])
    if scenario.client_program is not None:
        return user_client_argv(topology, scenario, target)
    count = str(scenario.concurrency)
    common = ["--host", target, "--port", str(service.port), "--count", count, "--json"]
    common += timeout
    sends = [arg for line in scenario.send for arg in ("--send", line)]
    if service.protocol == "udp":
        return program_argv("udp_echo", ["client", *common, *sends])
    extra = ["--concurrency", count, "--hold", str(scenario.hold)]
    if scenario.half_close:
        extra.append("--half-close")
    extra += ["--repeat", str(scenario.repeat)] if scenario.repeat > 1 else []
    extra += ["--rcvbuf", str(scenario.rcvbuf)] if scenario.rcvbuf else []
    if scenario.pause_reading > 0:
        extra += ["--pause-reading", str(scenario.pause_reading)]
    return program_argv("client", [*common, *extra, *sends])


def services_on(topology: Topology, node: str) -> list[Service]:
    return [s for s in topology.services if s.node == node]


def scenarios_of(topology: Topology, node: str) -> list[Scenario]:
    return [sc for sc in topology.scenarios if node in sc.clients]


def job_names(topology: Topology, node: str) -> dict[str, str]:
    """Job name of each of the node's scenarios: the scenario's, unless a service on the
    same node has that name (the supervisor's jobs and log files need distinct names)."""
    taken = {s.name for s in services_on(topology, node)}
    return {
        sc.name: sc.name + "-client" if sc.name in taken else sc.name
        for sc in scenarios_of(topology, node)
    }


def supervise_argv(topology: Topology, node: Node) -> Command:
    """The node container's command: ``lab.programs.compose_node``, its options, then one
    job per line (``serve``/``client``, name, argument count, arguments)."""
    start = program_argv("compose_node", ["--node", node.name, "--results", RESULTS_IN_CONTAINER])
    options = phase_options(topology, node.name)
    options += start_after(scenarios_of(topology, node.name), job_names(topology, node.name))
    capture = topology.capture
    if capture.enabled:
        rings = capture.ring_kib(sum(len(n.interfaces) for n in topology.nodes))
        options += ["--capture", "--snaplen", str(capture.snaplen), "--buffer", str(rings)]
        if capture.filter:
            options.append(f"--filter={capture.filter}")  # one word, even if it starts with '-'
    if node.gateway is not None:
        options += ["--gateway", str(node.gateway)]
    options += build_options(topology, node.name) + user_service_options(topology, node.name)
    options += restart_options(topology, node.name)
    options += [*listen_args(topology, node.name), "--"]
    jobs: list[list[str]] = []
    for service in services_on(topology, node.name):
        server = service_argv(topology, service)
        jobs.append(["serve", service.name, str(len(server)), *server])
    names = job_names(topology, node.name)
    for sc in scenarios_of(topology, node.name):
        client = client_argv(topology, sc, node.name)
        jobs.append(["client", names[sc.name], str(len(client)), *client])
    return Command([start, options, *jobs])


def listen_args(topology: Topology, node: str) -> list[str]:
    return [
        arg for s in services_on(topology, node) for arg in ("--listen", f"{s.protocol}:{s.port}")
    ]


def pids_limit(topology: Topology, node: str) -> int:
    """Room for one process or thread per connection served and per client running at once."""
    served = {s.name for s in services_on(topology, node)}
    inbound = sum(sc.total_connections for sc in topology.scenarios if sc.service in served)
    outbound = max((sc.concurrency for sc in scenarios_of(topology, node)), default=0)
    return BASE_PIDS + inbound + outbound


# -- ordering -------------------------------------------------------------------------------


def needs_health(topology: Topology, node: Node) -> bool:
    """Servers and routers: a health check says when they are ready."""
    return node.router or bool(services_on(topology, node.name))


# -- networks ---------------------------------------------------------------------------------


def bridge_gateway(topology: Topology, network: Network) -> IPv4Address:
    """The address the engine gives its own end of the bridge: the highest host address
    no node uses (the engine would take the lowest, which labs often give to a node)."""
    used = {n.address_on(network.name) for n in topology.nodes}
    for address in reversed(list(network.subnet.hosts())):
        if address not in used:
            return address
    raise ComposeError(
        f"network {network.name} ({network.subnet}) has no free address left for the "
        "engine's bridge; use a larger subnet"
    )


def mtu_option(network: Network) -> dict[str, str]:
    """The engine's MTU of the network's interfaces, as ``lab run --backend docker`` sets
    it (each node also sets it, with one segment per packet: ``--mtu``)."""
    return {} if network.mtu is None else {MTU: str(network.mtu)}


def network_entry(topology: Topology, network: Network) -> dict[str, Any]:
    return {
        "driver": "bridge",
        # No NAT: nothing leaves the lab's bridges through the host (``internal`` would
        # also drop the packets a router container forwards).
        "driver_opts": {MASQUERADE: "false", **mtu_option(network)},
        "labels": {LABEL_TOPOLOGY: topology.name},
        "ipam": {
            "driver": "default",
            "config": [
                {
                    "subnet": str(network.subnet),
                    "gateway": str(bridge_gateway(topology, network)),
                }
            ],
        },
    }


# -- containers -------------------------------------------------------------------------------


def node_entry(topology: Topology, node: Node, image: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "image": image,
        "hostname": node.name,
        # tini as PID 1: passes docker stop's SIGTERM to the supervisor, reaps orphans.
        "init": True,
        "read_only": True,
        "tmpfs": [TMPFS_EXEC if node.name in topology.user_program_nodes() else "/tmp"],
        "cap_drop": ["ALL"],
        # NET_ADMIN: the default route; NET_RAW: tcpdump's packet sockets; SETUID and
        # SETGID: tcpdump -Z root still calls setgid/initgroups/setuid before capturing (and
        # userprog drops to nobody); what the user's programs need where they run (user_caps).
        "cap_add": ["NET_ADMIN", "NET_RAW", "SETUID", "SETGID", *user_caps(topology, node.name)],
        "security_opt": ["no-new-privileges:true"],
        "mem_limit": MEMORY_LIMIT,
        "pids_limit": pids_limit(topology, node.name),
    }
    if node.router:
        entry["sysctls"] = {"net.ipv4.ip_forward": "1"}
    entry["labels"] = {LABEL_TOPOLOGY: topology.name, LABEL_NODE: node.name}
    entry["volumes"] = [RESULTS_MOUNT, *source_mounts(topology, node.name)]
    entry["networks"] = {
        iface.network: {"ipv4_address": str(iface.address)} for iface in node.interfaces
    }
    entry["command"] = supervise_argv(topology, node)
    if needs_health(topology, node):
        check = program_argv("supervise", ["--check", *listen_args(topology, node.name)])
        entry["healthcheck"] = {"test": Command([["CMD", *check]]), **HEALTHCHECK}
    # The nodes keep in step among themselves (``compose_node``): they all start at once.
    entry["depends_on"] = {PREPARE: DONE}
    return entry


def compose_dict(
    topology: Topology, image: str = DEFAULT_IMAGE, report_image: str = DEFAULT_REPORT_IMAGE
) -> dict[str, Any]:
    """The compose file as data (what ``compose_text`` writes out); ``report_image`` runs
    ``prepare`` and ``report`` (the node image with the whole lab in it)."""
    refuse_unsupported(topology)
    jobs = {n.name: job_names(topology, n.name) for n in topology.nodes}
    services = {n.name: node_entry(topology, n, image) for n in topology.nodes}
    return {
        "services": {**services, **lab_services(topology, report_image, jobs, PYTHON)},
        "networks": {net.name: network_entry(topology, net) for net in topology.networks},
    }


def header(topology: Topology, source: str | None) -> str:
    where = source or (topology.source.as_posix() if topology.source else None)
    origin = where or f"the topology '{topology.name}'"
    command = REGENERATE.format(source=where or "TOPOLOGY.yaml")
    return (
        f"# Generated by `lab compose` from {origin}: do not edit, regenerate with\n"
        f"#   {command}\n"
        "# `docker compose up` (or `docker-compose up`) runs the lab in the phases of `lab run`\n"
        "# and ends with results/compose/report.html, judged by `lab report` in the report\n"
        "# service (a previous folder is kept as results/compose-<time>). `docker compose down`\n"
        "# removes every container and network. Build the images first: `lab images build`.\n"
    )


def compose_text(
    topology: Topology,
    image: str = DEFAULT_IMAGE,
    *,
    source: str | None = None,
    report_image: str = DEFAULT_REPORT_IMAGE,
) -> str:
    """The compose file for ``topology``, as YAML with a header comment.

    ``source`` is how the header names the topology file (default: ``topology.source`` as
    it was given). Raises ``ComposeError`` for a topology compose cannot order."""
    return header(topology, source) + emit(compose_dict(topology, image, report_image))
