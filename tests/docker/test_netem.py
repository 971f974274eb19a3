"""netem on Docker nodes: egress inside the container, ingress on the host's end of its
veth; changed at run time; nothing left after ``down`` (the host's qdiscs listed before and
after, the containers gone)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import docker
import pytest

from lab.errors import BackendError
from lab.run.backends.base import new_run_id
from lab.run.backends.docker import DockerBackend
from lab.run.backends.docker.netem import host_peer
from lab.spec.model import Interface, Network, Node, Topology
from lab.spec.netem import Impairment, Netem
from tests.docker.conftest import labelled

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def host_netem() -> list[str]:
    out = subprocess.run(["tc", "-j", "qdisc", "show"], capture_output=True, text=True).stdout
    return sorted(str(q.get("dev")) for q in json.loads(out or "[]") if q.get("kind") == "netem")


def node_netem(backend: DockerBackend, node: str, dev: str) -> bool:
    done = backend.run(node, ["tc", "-j", "qdisc", "show", "dev", dev])
    return any(q.get("kind") == "netem" for q in json.loads(done.stdout or "[]"))


def test_docker_netem_placed_changed_and_gone(
    netem_kernel: None, engine: docker.DockerClient
) -> None:
    net = IPv4Network("10.20.41.0/24")
    topology = Topology(
        "imp",
        (Network("lan", net),),
        (
            Node("a", (Interface("lan", IPv4Address("10.20.41.10")),)),
            Node("b", (Interface("lan", IPv4Address("10.20.41.11")),)),
        ),
    )
    topology = replace(
        topology,
        impairments=(
            Impairment("a", "lan", "egress", Netem(delay_us=20_000)),
            Impairment("b", "lan", "ingress", Netem(loss=5.0)),
        ),
    )
    backend = DockerBackend(new_run_id())
    before = host_netem()
    try:
        backend.up(topology)
        a_dev, b_dev = backend.interfaces("a")["lan"], backend.interfaces("b")["lan"]
        assert node_netem(backend, "a", a_dev)
        assert not node_netem(backend, "b", b_dev)  # b's ingress is on the host's end
        iflink = int(backend.run("b", ["cat", f"/sys/class/net/{b_dev}/iflink"]).stdout)
        assert host_peer(iflink) in host_netem()
        backend.set_netem("b", "lan", "ingress", None)
        assert host_peer(iflink) not in host_netem()
        backend.set_netem("a", "lan", "egress", None)
        assert not node_netem(backend, "a", a_dev)
    finally:
        backend.down()
        assert labelled(engine, backend.run_id) == []
        assert host_netem() == before


def test_the_host_end_of_a_node_link_is_found(engine: docker.DockerClient) -> None:
    # Where ingress netem goes, found without netem itself (which a kernel may lack).
    topology = Topology(
        "peer",
        (Network("lan", IPv4Network("10.20.42.0/24")),),
        (Node("a", (Interface("lan", IPv4Address("10.20.42.10")),)),),
    )
    backend = DockerBackend(new_run_id())
    try:
        backend.up(topology)
        dev = backend.interfaces("a")["lan"]
        iflink = int(backend.run("a", ["cat", f"/sys/class/net/{dev}/iflink"]).stdout)
        peer = host_peer(iflink)
        link = subprocess.run(
            ["ip", "-j", "-d", "link", "show", "dev", peer], capture_output=True, text=True
        )
        assert json.loads(link.stdout)[0]["linkinfo"]["info_kind"] == "veth"
    finally:
        backend.down()
        assert labelled(engine, backend.run_id) == []
    with pytest.raises(BackendError, match="engine on this machine"):
        host_peer(iflink)  # gone with the container
