"""What the compose lab's nodes need to run in ``lab run``'s phases, and its first and last
services: ``prepare`` (a clean results folder) and ``report`` (run.json once every node
has completed). See ``lab.programs.compose_node`` and ``lab.programs.compose_record``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from lab.errors import LabError
from lab.spec.model import Scenario, Topology

RESULTS_ROOT = "/lab-results"  # ./results, mounted in every service
RESULTS_IN_CONTAINER = f"{RESULTS_ROOT}/compose"
SYNC_IN_CONTAINER = f"{RESULTS_IN_CONTAINER}/.sync"
PREPARE = "prepare"
REPORT = "report"
DONE = {"condition": "service_completed_successfully"}
PYTHON = "python3"
PORT_RANGE_CLAIM = "ephemeral-ports"  # as ``lab.run.portrange`` (a test keeps them the same)


def program_argv(program: str, args: Iterable[str]) -> list[str]:
    return [PYTHON, "-m", f"lab.programs.{program}", *args]


class ComposeError(LabError):
    """The topology cannot be expressed as a compose file (the message says why)."""

    exit_code = 2


def refuse_unsupported(topology: Topology) -> None:
    """What the compose lab cannot do, said before anything is written."""
    steps = [f"impair in scenario {sc.name}" for sc in topology.scenarios if sc.impair]
    steps += [f"netem on network {i.network}" for i in topology.impairments]
    where = f"{topology.source.as_posix()}: " if topology.source is not None else ""
    if steps:
        raise ComposeError(
            f"{where}{', '.join(dict.fromkeys(steps))}: not supported by compose: an impairment is "
            "the kernel's netem qdisc (sch_netem), set from outside the nodes on the host's "
            "end of each link, which no container of a compose file reaches; use `lab run` "
            "on a kernel that has netem"
        )
    taken = {PREPARE, REPORT} & {n.name for n in topology.nodes}
    if taken:
        raise ComposeError(
            f"{where}node name {', '.join(sorted(taken))} is the compose lab's own service: "
            "rename it"
        )


def phase_options(topology: Topology, node: str) -> list[str]:
    """``lab.programs.compose_node``'s options for ``node``: the other nodes to keep in
    step with, and the held connections its "during" snapshot waits for."""
    everyone = [n.name for n in topology.nodes]
    clients = [n for n in everyone if any(n in sc.clients for sc in topology.scenarios)]
    held = held_connections(topology)
    held_nodes = sorted({topology.service(s).node for s in held})
    options = ["--sync", SYNC_IN_CONTAINER, "--nodes", ",".join(everyone)]
    options += ["--client-nodes", ",".join(clients), "--held-nodes", ",".join(held_nodes)]
    for name, count in held.items():
        service = topology.service(name)
        if service.node == node:
            # Fork and thread servers: also until a child or thread serves each connection.
            # Not a double fork: its grandchildren serve, no longer its children, and were
            # waited for in vain until the connections had ended (the checks do not count
            # them either).
            serves = service.model in ("fork", "thread") and not service.option("double_fork")
            served = name if serves else ""
            options += ["--held", f"tcp:{service.port}:{count}:{served}"]
    holds = [sc.hold for sc in topology.scenarios if sc.hold > 0]
    options += ["--held-timeout", str(max(min(holds), 5.0) if holds else 5.0)]
    return options + evidence_options(topology, node)


def evidence_options(topology: Topology, node: str) -> list[str]:
    """The node's links with an MTU; the watch (every node, as ``lab run`` snapshots
    them all); the port range read on the clients of an ``ephemeral-ports`` claim."""
    me = topology.node(node)
    options = [
        f"--mtu={iface.address}={mtu}"
        for iface in me.interfaces
        if (mtu := topology.network(iface.network).mtu) is not None
    ]
    longest = max((sc.watch for sc in topology.scenarios), default=0.0)
    if longest > 0:
        options += ["--watch", str(longest)]
    if any(PORT_RANGE_CLAIM in sc.claims and node in sc.clients for sc in topology.scenarios):
        options.append("--port-range")
    return options


def held_connections(topology: Topology) -> dict[str, int]:
    """Connections held open per TCP service, as ``lab.run.clients`` waits for them."""
    expected: dict[str, int] = {}
    for sc in topology.scenarios:
        service = topology.service(sc.service)
        if sc.hold > 0 and service.protocol == "tcp":
            expected[sc.service] = expected.get(sc.service, 0) + sc.total_connections
    return expected


def start_after(scenarios: list[Scenario], jobs: dict[str, str]) -> list[str]:
    return [
        arg
        for sc in scenarios
        if sc.start_after > 0
        for arg in ("--start-after", f"{jobs[sc.name]}={sc.start_after}")
    ]


def plan(topology: Topology, jobs: dict[str, dict[str, str]]) -> dict[str, Any]:
    """What ``compose_record`` needs to write run.json and topology.yaml. ``jobs`` maps
    each node to its scenarios' job names."""
    if topology.text is not None:
        text = topology.text
    elif topology.source is not None:
        text = topology.source.read_text(encoding="utf-8")
    else:
        raise ComposeError(f"topology {topology.name} has no text to keep with its results")
    return {
        "topology": topology.name,
        "text": text,
        "nodes": {
            n.name: {i.network: str(i.address) for i in n.interfaces} for n in topology.nodes
        },
        "services": {
            s.name: {
                "node": s.node,
                "program": s.program,
                "port": s.port,
                "protocol": s.protocol,
                "options": dict(s.options),
            }
            for s in topology.services
        },
        "scenarios": {
            sc.name: {
                "service": sc.service,
                "clients": {node: jobs[node][sc.name] for node in sc.clients},
            }
            for sc in topology.scenarios
        },
    }


def one_shot(image: str, command: list[str]) -> dict[str, Any]:
    """A service that runs once, without a network, with only what it needs."""
    return {
        "image": image,
        "init": True,
        "read_only": True,
        "network_mode": "none",
        "cap_drop": ["ALL"],
        # DAC_OVERRIDE: results/ belongs to the user; CHOWN: the results handed back to them.
        "cap_add": ["DAC_OVERRIDE", "CHOWN"],
        "security_opt": ["no-new-privileges:true"],
        "volumes": [f"./results:{RESULTS_ROOT}"],
        "command": command,
    }


def lab_services(
    topology: Topology, image: str, jobs: dict[str, dict[str, str]], python: str
) -> dict[str, dict[str, Any]]:
    """``prepare`` and ``report``: before every node, and once they have all completed."""
    program = [python, "-m", "lab.programs.compose_record"]
    prepare = one_shot(image, [*program, "prepare", "--root", RESULTS_ROOT])
    record = [*program, "record", "--root", RESULTS_ROOT]
    report = one_shot(image, [*record, "--plan", json.dumps(plan(topology, jobs))])
    report["depends_on"] = {n.name: DONE for n in topology.nodes}
    return {PREPARE: prepare, REPORT: report}
