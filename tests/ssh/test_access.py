"""The ways in to a host, against real OpenSSH servers: through a jump host, with keys
from a real ssh-agent, as a user with passwordless sudo, as one without (refused at
pre-flight), and a node whose lab address is a secondary one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from lab.errors import BackendError
from lab.run.backends.base import new_run_id
from lab.run.backends.ssh.backend import SshBackend
from lab.spec.model import Interface, Node, Topology
from lab.spec.topology import load_topology
from tests.backends.contract_kit import TCP_CLIENT, TCP_ECHO, lan
from tests.labcli import lab
from tests.ssh.hosts import World, run_dirs, run_processes
from tests.ssh.test_ssh import MINI, ssh_topology

pytestmark = pytest.mark.ssh

Worlds = Callable[..., World]


@pytest.fixture
def backends() -> Iterator[Callable[[type[SshBackend]], SshBackend]]:
    """Backends of fresh run ids; each torn down at the end, and seen to leave nothing."""
    made: list[SshBackend] = []

    def make(cls: type[SshBackend]) -> SshBackend:
        made.append(cls(new_run_id()))
        return made[-1]

    yield make
    for backend in made:
        backend.down()
        assert run_processes(backend.run_id) == []
        assert run_dirs(backend.run_id) == []


def whoami(backend: SshBackend, node: str) -> str:
    done = backend.run(node, [backend.python, "-c", "import os; print(os.geteuid())"])
    assert done.ok, done.stderr
    return done.stdout.strip()


def echo_round_trip(backend: SshBackend, server: str, client: str, address: str) -> None:
    """The contract's basics on two nodes: spawn, run, stop, fetch."""
    log = backend.workdir(server) / "echo.log"
    proc = backend.spawn(server, [backend.python, "-u", "-c", TCP_ECHO, "7005"], log=log)
    done = backend.run(client, [backend.python, "-c", TCP_CLIENT, address, "7005", "hi"])
    assert done.ok, done.stderr
    assert done.stdout.strip() == "echo hi"
    assert proc.running()
    assert proc.stop(timeout=5) == -signal.SIGTERM


def test_a_host_reachable_only_through_a_jump_host(
    worlds: Worlds, backends: Callable[[type[SshBackend]], SshBackend], tmp_path: Path
) -> None:
    topo = lan("gw", "inner", subnet="10.20.77.0/24")
    world = worlds(topo, hidden={"inner"})
    inner = world.hosts["inner"]
    assert inner.address == "10.20.77.11" and not inner.link
    known = world.known_hosts(tmp_path / "kh")
    cls = SshBackend.configured(known_hosts=known)
    gw_target = world.target("gw")
    direct = (
        replace(topo.node("gw"), ssh=gw_target),
        replace(topo.node("inner"), ssh=world.target("inner")),
    )
    # From here there is no way to it but through gw (an address of that subnet here, if
    # any, is another lab's and not this host: refused either way).
    with pytest.raises(BackendError, match="node inner"):
        backends(cls).up(replace(topo, nodes=direct))
    nodes = (direct[0], replace(direct[1], ssh=replace(world.target("inner"), jump=gw_target)))
    backend = backends(cls)
    backend.up(replace(topo, nodes=nodes))
    assert backend.node_info("inner")["host"] == f"{world.user}@10.20.77.11:22 via {gw_target}"
    assert backend.interfaces("inner") == {"lan": "eth0"}
    echo_round_trip(backend, "inner", "gw", "10.20.77.11")
    backend.fetch("inner", backend.workdir("inner"), tmp_path / "inner")
    assert (tmp_path / "inner" / "echo.log").read_text() == "listening\n"


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real ssh-agent of the test's own, on a socket in tmp_path, stopped by its PID."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        for _ in range(500):
            if sock.exists() or proc.poll() is not None:
                break
            subprocess.run(["sleep", "0.01"], check=True)
        assert sock.exists(), "ssh-agent did not start"
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        proc.terminate()
        proc.wait(10)


def test_keys_from_a_real_ssh_agent(
    worlds: Worlds,
    backends: Callable[[type[SshBackend]], SshBackend],
    agent: Path,
    tmp_path: Path,
) -> None:
    world = worlds(lan("h1"))
    known = world.known_hosts(tmp_path / "kh")
    topo = world.attach(lan("h1"), key=None, agent=True)
    cls = SshBackend.configured(known_hosts=known)
    # The agent holds no key yet: refused, and said so.
    with pytest.raises(BackendError, match=f"the ssh-agent at {agent} holds no keys"):
        backends(cls).up(topo)
    env = {**os.environ, "SSH_AUTH_SOCK": str(agent)}
    subprocess.run(["ssh-add", "-q", str(world.client_key)], env=env, check=True)
    backend = backends(cls)
    backend.up(topo)
    assert backend.run("h1", ["true"]).ok


def test_a_user_with_passwordless_sudo_runs_the_lab_as_root(
    worlds: Worlds,
    backends: Callable[[type[SshBackend]], SshBackend],
    sudo_user: str,
    tmp_path: Path,
) -> None:
    world = worlds(lan("srv", "cli"), user=sudo_user)
    known = world.known_hosts(tmp_path / "kh")
    backend = backends(SshBackend.configured(known_hosts=known))
    backend.up(world.attach(lan("srv", "cli")))
    assert backend.node_info("srv")["host"].startswith(f"{sudo_user}@")
    assert whoami(backend, "srv") == "0"  # tcpdump and the programs run as root
    # The temp dir is the login user's (made over SFTP), what runs in it is root's.
    root = Path(str(backend.workdir("srv"))).parent
    assert root.stat().st_uid == int(subprocess.check_output(["id", "-u", sudo_user]))
    echo_round_trip(backend, "srv", "cli", "10.20.0.10")
    backend.fetch("srv", backend.workdir("srv"), tmp_path / "srv")
    assert (tmp_path / "srv" / "echo.log").read_text() == "listening\n"


def test_a_user_without_sudo_is_refused_with_every_other_problem(
    worlds: Worlds,
    backends: Callable[[type[SshBackend]], SshBackend],
    nosudo_user: str,
    tmp_path: Path,
) -> None:
    topo = lan("a", "b", "c")
    world = worlds(topo)
    known = world.known_hosts(tmp_path / "kh")
    nodes = (
        replace(topo.node("a"), ssh=world.target("a", user=nosudo_user)),
        replace(topo.node("b"), ssh=world.target("b", python="/nonexistent/python3")),
        replace(topo.node("c"), ssh=world.target("c")),
    )
    backend = backends(SshBackend.configured(known_hosts=known))
    with pytest.raises(BackendError) as info:
        backend.up(replace(topo, nodes=nodes))
    message = str(info.value)
    assert "2 hosts cannot run the lab; nothing was started" in message
    assert f"node a ({nosudo_user}@" in message
    assert "needs root or passwordless sudo" in message
    assert "node b (" in message and "no Python at '/nonexistent/python3'" in message
    assert "node c (" not in message


def test_a_secondary_address_is_found_on_its_interface(
    worlds: Worlds, backends: Callable[[type[SshBackend]], SshBackend], tmp_path: Path
) -> None:
    world = worlds(lan("h1"))
    ns = world.hosts["h1"].namespace
    subprocess.run(
        ["ip", "-n", ns, "addr", "add", "10.20.0.99/24", "dev", "eth0"],
        check=True,
        capture_output=True,
    )
    topo = lan("h1")
    node = topo.node("h1")
    moved = Node(node.name, (Interface("lan", IPv4Address("10.20.0.99")),), ssh=world.target("h1"))
    backend = backends(SshBackend.configured(known_hosts=world.known_hosts(tmp_path / "kh")))
    backend.up(Topology(topo.name, topo.networks, (moved,)))
    assert backend.interfaces("h1") == {"lan": "eth0"}


def test_lab_run_with_the_server_behind_a_jump_host(worlds: Worlds, tmp_path: Path) -> None:
    source = tmp_path / "mini-source.yaml"
    source.write_text(MINI)
    world = worlds(load_topology(source), hidden={"server"})
    client = world.hosts["client1"]
    jump = {"host": client.address, "user": world.user, "key": str(world.client_key)}
    topo = ssh_topology(world, source, tmp_path / "mini.yaml", server={"jump": jump})
    known = world.known_hosts(tmp_path / "kh")
    out = tmp_path / "out"
    proc = lab(
        "run", str(topo), "--backend", "ssh", "--known-hosts", str(known), "--out", str(out),
        "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["passed"] is True
    server = f"{world.user}@{world.hosts['server'].address}:22"
    assert summary["nodes"]["server"]["host"] == f"{server} via {world.user}@{client.address}:22"
    assert (out / "server" / "eth0.pcap").stat().st_size > 0
    assert run_processes(summary["run_id"]) == [] and run_dirs(summary["run_id"]) == []
