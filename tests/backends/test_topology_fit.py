"""A backend that cannot run a topology at all says so before anything is created."""

from __future__ import annotations

from lab.run.backends.netns.backend import NetnsBackend
from lab.run.backends.ssh.backend import SshBackend
from lab.spec.topology import load_topology_text


def _wide(networks: int, nodes: int) -> str:
    lines = ["name: wide", "networks:"]
    lines += [f"  n{k}: {{subnet: 10.{k}.0.0/16}}" for k in range(networks)]
    lines.append("nodes:")
    for i in range(nodes):
        ifaces = ", ".join(f"n{k}: 10.{k}.{i // 250}.{i % 250 + 1}" for k in range(networks))
        lines.append(f"  h{i}: {{interfaces: {{{ifaces}}}}}")
    return "\n".join(lines) + "\n"


def test_netns_refuses_more_links_than_interface_names_can_number() -> None:
    topology = load_topology_text(_wide(41, 250), "wide.yaml")
    (problem,) = NetnsBackend.topology_problems(topology)
    assert "exceeds 15 characters" in problem


def test_netns_takes_a_topology_whose_names_fit() -> None:
    assert NetnsBackend.topology_problems(load_topology_text(_wide(2, 3), "w.yaml")) == []


def test_ssh_needs_a_target_on_every_node() -> None:
    (problem,) = SshBackend.topology_problems(load_topology_text(_wide(1, 2), "w.yaml"))
    assert "none on h0, h1" in problem
