"""The docker backend against the real engine: what it creates, how nodes talk, and that
teardown and clean leave nothing labelled behind. The shared contract is in tests/backends."""

from __future__ import annotations

import re
import subprocess
import textwrap
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import docker
import pytest

from lab.errors import BackendError, BackendUnavailable
from lab.run.backends import choose_backend
from lab.run.backends.base import new_run_id
from lab.run.backends.docker import CAPABILITIES, DockerBackend
from lab.spec.model import Interface, Network, Node, Topology
from tests.docker.conftest import labelled

A = IPv4Address
Up = Callable[[Topology], DockerBackend]


def lan(*names: str) -> Topology:
    net = IPv4Network("10.41.0.0/24")
    nodes = tuple(
        Node(n, (Interface("lan", net.network_address + 10 + k),)) for k, n in enumerate(names)
    )
    return Topology("dlan", (Network("lan", net),), nodes)


def routed() -> Topology:
    return Topology(
        "drouted",
        (
            Network("left", IPv4Network("10.42.1.0/24")),
            Network("right", IPv4Network("10.42.2.0/24")),
        ),
        (
            Node("h1", (Interface("left", A("10.42.1.10")),), gateway=A("10.42.1.1")),
            Node("r", (Interface("left", A("10.42.1.1")), Interface("right", A("10.42.2.1"))),
                 router=True),
            Node("h2", (Interface("right", A("10.42.2.10")),), gateway=A("10.42.2.1")),
        ),
    )  # fmt: skip


def test_up_labels_names_and_confines_every_object(lab_up: Up, engine: docker.DockerClient) -> None:
    backend = lab_up(routed())
    rid = backend.run_id
    assert labelled(engine, rid) == sorted(
        [f"container slab-{rid}-{n}" for n in ("h1", "r", "h2")]
        + [f"network slab-{rid}-{n}" for n in ("left", "right")]
    )
    for name in ("h1", "r", "h2"):
        attrs = engine.containers.get(f"slab-{rid}-{name}").attrs
        labels = attrs["Config"]["Labels"]
        assert (labels["socket-lab.run"], labels["socket-lab.topology"]) == (rid, "drouted")
        assert labels["socket-lab.backend"] == "docker"
        assert attrs["Config"]["Hostname"] == name
        host = attrs["HostConfig"]
        assert host["CapDrop"] == ["ALL"]
        assert sorted(host["CapAdd"]) == sorted(CAPABILITIES)
        assert not host["Privileged"]
        assert host["Init"] is True
        assert host["Memory"] > 0 and host["PidsLimit"] > 0
        assert host["Sysctls"]["net.ipv4.ip_forward"] == ("1" if name == "r" else "0")
    for net in engine.networks.list(filters={"label": f"socket-lab.run={rid}"}):
        assert net.attrs["Labels"]["socket-lab.topology"] == "drouted"
        assert net.attrs["Options"]["com.docker.network.bridge.enable_ip_masquerade"] == "false"
    assert backend.run_id in DockerBackend.running_labs()


def test_nodes_have_their_addresses_and_no_way_out(lab_up: Up) -> None:
    backend = lab_up(routed())
    assert backend.interfaces("r").keys() == {"left", "right"}
    addrs = backend.run("r", ["ip", "-o", "-4", "addr", "show"]).stdout
    for net, address in (("left", "10.42.1.1/24"), ("right", "10.42.2.1/24")):
        assert re.search(rf"\b{backend.interfaces('r')[net]}\s+inet {address}\b", addrs), addrs
    # The router has no default route at all, the hosts only one through the router.
    assert "default" not in backend.run("r", ["ip", "route"]).stdout
    assert backend.run("h1", ["ip", "route", "show", "default"]).stdout.split()[:3] == [
        "default", "via", "10.42.1.1",
    ]  # fmt: skip
    # The host machine holds no address in a lab subnet, so it cannot be a hop.
    host_addrs = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    assert " 10.42." not in host_addrs


def test_two_nodes_reach_each_other(lab_up: Up) -> None:
    backend = lab_up(lan("a", "b"))
    done = backend.run("a", ["ping", "-c", "1", "-W", "5", "10.41.0.11"])
    assert done.ok, done.stdout + done.stderr
    assert "1 received" in done.stdout


def test_routing_through_a_router_container(lab_up: Up) -> None:
    backend = lab_up(routed())
    done = backend.run("h1", ["ping", "-c", "1", "-W", "5", "10.42.2.10"])
    assert done.ok, done.stdout + done.stderr
    assert "ttl=63" in done.stdout  # one hop: the router decremented it


def test_tcpdump_captures_and_stops_unprivileged(lab_up: Up, tmp_path: Path) -> None:
    backend = lab_up(lan("a", "b"))
    wd = backend.workdir("a")
    argv = ["tcpdump", "-i", "any", "-U", "-w", str(wd / "a.pcap"), "icmp"]
    cap = backend.spawn("a", argv, log=wd / "tcpdump.log")
    backend.run("a", ["sh", "-c", 'until grep -q listening "$1"; do sleep 0.05; done',
                      "sh", str(wd / "tcpdump.log")], timeout=20)  # fmt: skip
    assert backend.run("a", ["ping", "-c", "2", "-W", "5", "10.41.0.11"]).ok
    # tcpdump runs as its own user: stopping it needs the KILL capability.
    assert cap.stop(timeout=10) == 0
    backend.fetch("a", wd, tmp_path)
    log = (tmp_path / "tcpdump.log").read_text()
    assert re.search(r"^[1-9]\d* packets captured", log, re.M), log
    assert (tmp_path / "a.pcap").stat().st_size > 24  # more than the pcap file header


PARENT = 'ppid=$(ps -o ppid= -p "$1" | tr -d " "); tr "\\0" " " < /proc/"$ppid"/cmdline'


def test_the_local_engine_runs_commands_through_the_node_agent_and_goes_on_without_it(
    lab_up: Up,
) -> None:
    """Commands and background processes on a node of this machine's engine are the
    agent's children; once the agent is killed, an exec per command takes over, and a
    process it had started is still seen running and stopped."""
    backend = lab_up(lan("a"))
    log = backend.workdir("a") / "sleep.log"
    proc = backend.spawn("a", ["sleep", "120"], log=log)
    parent = backend.run("a", ["sh", "-c", PARENT, "sh", str(proc.pid)]).stdout
    assert "lab.programs.agent" in parent, parent
    me = backend.run("a", ["sh", "-c", 'tr "\\0" " " < /proc/"$PPID"/cmdline']).stdout
    assert "lab.programs.agent" in me, me
    # Anchored: an exec wraps its command in `timeout`, whose arguments hold the pattern.
    agents = ["pgrep", "-f", "^[^ ]*python[0-9.]* -S -m lab[.]programs[.]agent"]
    agent = backend.run("a", agents).stdout.split()
    assert len(agent) == 1, agent
    backend.run("a", ["kill", "-9", agent[0]], timeout=10)  # answered by exec if not by it
    assert backend.run("a", agents).returncode == 1
    assert proc.running()
    assert proc.stop(timeout=10) is not None and not proc.running()
    later = backend.spawn("a", ["sleep", "120"], log=log)
    parent = backend.run("a", ["sh", "-c", PARENT, "sh", str(later.pid)]).stdout
    assert "lab.programs.agent" not in parent and later.running()
    assert later.stop(timeout=10) == -15


def test_orphans_are_reaped_by_the_init_process(lab_up: Up) -> None:
    backend = lab_up(lan("a"))
    # The parent exits at once; its child outlives it, exits, and must not stay a zombie.
    script = textwrap.dedent(
        """
        import os, time
        pid = os.fork()
        if pid == 0:
            time.sleep(0.3)
            os._exit(0)
        print(pid)
        """
    )
    orphan = backend.run("a", ["python3", "-c", script]).stdout.strip()
    check = 'for i in $(seq 100); do [ -e /proc/"$1" ] || exit 0; sleep 0.05; done; exit 1'
    done = backend.run("a", ["sh", "-c", check, "sh", orphan])
    status = backend.run("a", ["sh", "-c", 'cat /proc/"$1"/status 2>/dev/null', "sh", orphan])
    assert done.ok, status.stdout


def test_fetch_skips_links_that_leave_the_directory(lab_up: Up, tmp_path: Path) -> None:
    backend = lab_up(lan("a"))
    wd = str(backend.workdir("a"))
    script = 'echo data > "$1/kept.txt"; ln -s /etc/passwd "$1/escape"; ln -s kept.txt "$1/inner"'
    assert backend.run("a", ["sh", "-c", script, "sh", wd]).ok
    backend.fetch("a", backend.workdir("a"), tmp_path / "out")
    assert (tmp_path / "out" / "kept.txt").read_text() == "data\n"
    assert (tmp_path / "out" / "inner").read_text() == "data\n"
    assert not (tmp_path / "out" / "escape").exists()
    assert not (tmp_path / "out" / "escape").is_symlink()


def test_down_leaves_no_labelled_object_and_is_idempotent(engine: docker.DockerClient) -> None:
    backend = DockerBackend(new_run_id())
    try:
        backend.up(routed())
        assert labelled(engine, backend.run_id)
    finally:
        backend.down()
    assert labelled(engine, backend.run_id) == []
    backend.down()
    assert backend.run_id not in DockerBackend.running_labs()


def test_down_after_a_failed_up(engine: docker.DockerClient) -> None:
    topo = routed()
    bad = Node("h1", topo.node("h1").interfaces, gateway=A("192.0.2.1"))  # on no attached subnet
    backend = DockerBackend(new_run_id())
    try:
        with pytest.raises(BackendError, match="h1"):
            backend.up(Topology("broken", topo.networks, (bad, *topo.nodes[1:])))
    finally:
        backend.down()
    assert labelled(engine, backend.run_id) == []


def test_clean_removes_a_run_nobody_tore_down(engine: docker.DockerClient) -> None:
    owner = DockerBackend(new_run_id())
    try:
        owner.up(lan("a", "b"))
        rid = owner.run_id
        del owner  # its process "crashed": only the engine remembers the run
        removed = DockerBackend.clean(rid)
        assert sorted(removed) == sorted(
            [f"container slab-{rid}-a", f"container slab-{rid}-b", f"network slab-{rid}-lan"]
        )
        assert labelled(engine, rid) == []
        assert DockerBackend.clean(rid) == []
    finally:
        DockerBackend(rid).down()


def test_an_unreachable_engine_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/socket-lab/docker.sock")
    reason = DockerBackend.available()
    assert reason is not None
    assert "\n" not in reason
    assert "not reachable at unix:///nonexistent/socket-lab/docker.sock" in reason
    assert "--backend netns" in reason
    with pytest.raises(BackendUnavailable) as raised:
        choose_backend("docker")
    assert str(raised.value) == reason
    with pytest.raises(BackendError):
        DockerBackend(new_run_id()).up(lan("a"))


# Alone, after the parallel part: with other Docker work at once, the engine was seen to keep
# an endpoint of a removed container (CI, two workers), which only an engine restart clears.
@pytest.mark.exclusive
def test_many_containers_on_two_networks_tear_down_completely(
    engine: docker.DockerClient,
) -> None:
    """Force-removing many attached containers at once once left the engine counting
    endpoints of removed containers, so their network could not be deleted. With 40 nodes
    on two networks, down() must leave no labelled container and no network."""
    lans = (
        Network("a", IPv4Network("10.77.200.0/24")),
        Network("b", IPv4Network("10.77.201.0/24")),
    )
    nodes = tuple(
        Node(
            f"n{i:02d}",
            (
                Interface("a", IPv4Address(f"10.77.200.{10 + i}")),
                Interface("b", IPv4Address(f"10.77.201.{10 + i}")),
            ),
        )
        for i in range(40)
    )
    backend = DockerBackend(new_run_id())
    try:
        backend.up(Topology(name="many", networks=lans, nodes=nodes))
        assert len(labelled(engine, backend.run_id)) == 42
    finally:
        backend.down()
    assert labelled(engine, backend.run_id) == []
