"""What the netns backend promises beyond the shared contract: its names, where its links
live, what it turns off, and that an interrupted ``up`` leaves only what ``down`` removes.
Inspected from the outside with iproute2 and /proc, not through the backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

import lab
from lab.errors import BackendError
from lab.run.backends.base import new_run_id
from lab.run.backends.netns import NetnsBackend
from lab.spec.model import Interface, Network, Node, Topology
from tests.backends.contract_kit import lan, routed
from tests.leftovers import netns_objects

pytestmark = pytest.mark.netns


def ip_json(*args: str) -> list[dict[str, object]]:
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout
    return list(json.loads(out or "[]"))


def sysctl(ns: str, key: str) -> str:
    argv = ["ip", "netns", "exec", ns, "sysctl", "-n", key]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def leftovers(run_id: str) -> list[str]:
    """Everything named after the run: the shared checker, plus the switch's namespace."""
    found = netns_objects(run_id)
    names = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    found += [f"netns {n}" for n in names if n.startswith(f"slab-{run_id}-")]
    return sorted(set(found))


@pytest.fixture
def backend(root: None) -> Iterator[NetnsBackend]:
    b = NetnsBackend(new_run_id())
    yield b
    b.down()
    assert leftovers(b.run_id) == []


def test_names_carry_the_run_id(backend: NetnsBackend) -> None:
    rid = backend.run_id
    backend.up(routed())
    namespaces = sorted(n for n in os.listdir("/run/netns") if n.startswith(f"slab-{rid}-"))
    assert namespaces == [f"slab-{rid}-{n}" for n in ("_switch", "h1", "h2", "r")]
    assert backend.interfaces("r") == {"left": "eth0", "right": "eth1"}
    assert [link["ifname"] for link in ip_json("-n", f"slab-{rid}-r", "link")] == [
        "lo",
        "eth0",
        "eth1",
    ]
    switch = {str(link["ifname"]) for link in ip_json("-n", f"slab-{rid}-_switch", "link")}
    assert switch == {"lo", f"slab{rid}b0", f"slab{rid}b1"} | {f"slab{rid}v{k}" for k in range(4)}
    assert all(len(name) <= 15 for name in switch)


def test_the_host_namespace_gets_no_lab_link(backend: NetnsBackend) -> None:
    backend.up(routed())
    assert not [
        link for link in ip_json("link") if str(link["ifname"]).startswith(f"slab{backend.run_id}")
    ]


def test_bridges_have_no_address_no_netfilter_no_snooping(backend: NetnsBackend) -> None:
    backend.up(routed())
    switch = f"slab-{backend.run_id}-_switch"
    for link in ip_json("-n", switch, "addr"):
        if link["ifname"] != "lo":
            assert link.get("addr_info") == [], link["ifname"]
    details = ip_json("-d", "-n", switch, "link", "show", "type", "bridge")
    assert len(details) == 2
    for br in details:
        data = br["linkinfo"]["info_data"]  # type: ignore[index]
        assert (data["nf_call_iptables"], data["nf_call_arptables"]) == (0, 0)
        assert data["mcast_snooping"] == 0  # else its IGMP reports reach every capture
    if os.path.exists("/proc/sys/net/bridge/bridge-nf-call-iptables"):
        assert sysctl(switch, "net.bridge.bridge-nf-call-iptables") == "0"


def test_forwarding_only_on_routers_and_ipv6_off(backend: NetnsBackend) -> None:
    backend.up(routed())
    rid = backend.run_id
    assert sysctl(f"slab-{rid}-r", "net.ipv4.ip_forward") == "1"
    assert sysctl(f"slab-{rid}-h1", "net.ipv4.ip_forward") == "0"
    for node in ("h1", "r"):
        assert sysctl(f"slab-{rid}-{node}", "net.ipv6.conf.eth0.disable_ipv6") == "1"
    routes = ip_json("-n", f"slab-{rid}-h1", "route", "show", "default")
    assert [r["gateway"] for r in routes] == ["10.30.1.1"]


def test_run_sees_lab_on_pythonpath_and_sits_in_the_workdir(backend: NetnsBackend) -> None:
    backend.up(lan("h1"))
    done = backend.run("h1", [backend.python, "-c", "import lab, os; print(lab.__file__)"])
    assert done.ok, done.stderr
    assert Path(done.stdout.strip()) == Path(lab.__file__).resolve()
    where = backend.run("h1", [backend.python, "-c", "import os; print(os.getcwd())"])
    assert where.stdout.strip() == str(backend.workdir("h1"))


def test_spawned_pid_is_the_program_in_the_node(backend: NetnsBackend) -> None:
    backend.up(lan("h1"))
    proc = backend.spawn(
        "h1", ["sleep", "60"], log=backend.workdir("h1") / "sleep.log"
    )  # ip netns exec execs the command: no wrapper process in between
    assert Path(f"/proc/{proc.pid}/comm").read_text().strip() == "sleep"
    ns = os.stat(f"/run/netns/slab-{backend.run_id}-h1")
    mine = os.stat(f"/proc/{proc.pid}/ns/net")
    assert (mine.st_dev, mine.st_ino) == (ns.st_dev, ns.st_ino)
    proc.stop()


def test_tcpdump_can_write_its_capture_in_the_workdir(backend: NetnsBackend) -> None:
    """tcpdump drops to its own user before it opens the file (no -Z root here)."""
    backend.up(lan("h1"))
    pcap = backend.workdir("h1") / "lo.pcap"
    log = backend.workdir("h1") / "tcpdump.log"
    argv = ["tcpdump", "-i", "lo", "-U", "-c", "1", "-w", str(pcap), "udp", "port", "9999"]
    tcpdump = backend.spawn("h1", argv, log=log)
    send = textwrap.dedent(
        """
        import os, socket, sys, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        while not os.path.exists(sys.argv[1]) or os.path.getsize(sys.argv[1]) <= 24:
            s.sendto(b"x", ("127.0.0.1", 9999))
            time.sleep(0.05)
        """
    )
    done = backend.run("h1", [backend.python, "-c", send, str(pcap)], timeout=20)
    assert done.ok, done.stderr
    assert tcpdump.wait(10) == 0, Path(log).read_text()
    assert Path(pcap).stat().st_size > 24


def test_up_refuses_an_unknown_network_before_creating_anything(backend: NetnsBackend) -> None:
    topo = Topology(
        "bad",
        (Network("lan", IPv4Network("10.40.0.0/24")),),
        (Node("h1", (Interface("wan", IPv4Address("10.40.0.10")),)),),
    )
    with pytest.raises(BackendError, match="wan"):
        backend.up(topo)
    assert leftovers(backend.run_id) == []


@pytest.mark.parametrize("bad", ["..", "../..", "", "ABCDEF", "abc1234", "*"])
def test_clean_refuses_what_is_not_a_run_id(root: None, bad: str) -> None:
    with pytest.raises(BackendError, match="six hex digits"):
        NetnsBackend.clean(bad)


def test_fetch_of_a_workdir_never_made_is_empty(backend: NetnsBackend, tmp_path: Path) -> None:
    """After an up() that stopped before the directories, collecting still works."""
    backend.fetch("h1", backend.workdir("h1"), tmp_path / "h1")
    assert list((tmp_path / "h1").iterdir()) == []
    with pytest.raises(BackendError, match="not a directory"):
        backend.fetch("h1", backend.workdir("h1").parent.parent / "elsewhere", tmp_path / "x")


INTERRUPTED_UP = textwrap.dedent(
    """
    import sys
    from ipaddress import IPv4Network
    from lab.run.backends.netns import NetnsBackend
    from lab.spec.model import Interface, Network, Node, Topology
    net = IPv4Network("10.50.0.0/20")
    hosts = list(net.hosts())
    nodes = tuple(Node(f"n{i}", (Interface("lan", hosts[i]),)) for i in range(int(sys.argv[2])))
    print("starting", flush=True)
    NetnsBackend(sys.argv[1]).up(Topology("big", (Network("lan", net),), nodes))
    print("finished", flush=True)
    """
)


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
def test_an_interrupted_up_leaves_only_what_down_removes(root: None, delay: float) -> None:
    """SIGINT lands somewhere inside up() of 120 nodes; wherever it lands, down() removes
    everything. The delays only spread where it lands (directories, namespaces, links,
    node configuration); no assertion depends on which point it hits."""
    rid = new_run_id()
    child = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_UP, rid, "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "starting"
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
        # Either up() was cut short by KeyboardInterrupt, or it had already finished.
        assert ("KeyboardInterrupt" in err) != ("finished" in out), err
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        NetnsBackend(rid).down()
    assert leftovers(rid) == []


def test_a_missing_program_or_namespace_is_reported_by_the_node(backend: NetnsBackend) -> None:
    """Started straight in the namespace, a command that cannot start is still told apart
    the way `ip netns exec` tells it: an exit status and a message, not an exception."""
    backend.up(lan("h1"))
    done = backend.run("h1", ["no-such-program-here"])
    assert not done.ok and "no-such-program-here" in done.stderr
    subprocess.run(["ip", "netns", "del", f"slab-{backend.run_id}-h1"], check=True)
    gone = backend.run("h1", ["true"])
    assert not gone.ok and "slab-" in gone.stderr


def test_no_thread_of_this_process_is_left_in_a_node(backend: NetnsBackend) -> None:
    """Configuring nodes and starting commands enter namespaces from threads: afterwards
    every thread of this process is back in (or never left) the host's namespace."""
    home = os.stat("/proc/self/ns/net")
    backend.up(routed())
    backend.run("h1", ["true"])
    for tid in os.listdir("/proc/self/task"):
        st = os.stat(f"/proc/self/task/{tid}/ns/net")
        assert (st.st_dev, st.st_ino) == (home.st_dev, home.st_ino)
