"""Real SSH hosts for the ssh backend's tests: a topology brought up by the netns backend,
each node namespace given a management link to this (root) namespace and its own
``sshd`` listening there, with its own host key and a client key made for the test.

The ssh backend then drives these namespaces as separate machines: it reaches each one
only through its sshd, over TCP. The namespaces share this machine's filesystem, PIDs,
users and python3, which is fine: every path a run makes is private to it.

Tests log in as ``socketlab`` (a user with /bin/sh and passwordless sudo, made by
.ci/setup) where it exists: a command over SSH then starts a bare ``sh``, where root's
login shell here runs ~/.bashrc (pyenv) every time. A node can also be *hidden*: no
management link, its sshd listening on its lab address only, reachable through another
node as a jump host.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from lab.run.backends.base import new_run_id
from lab.run.backends.netns import NetnsBackend, ns_name
from lab.run.backends.ssh.backend import SshBackend
from lab.spec.model import Node, SshTarget, Topology
from tests.conftest import require

SSHD = "/usr/sbin/sshd"
SUDO_USER = "socketlab"  # .ci/setup: /bin/sh, passwordless sudo
NOSUDO_USER = "socketlab-nosudo"  # .ci/setup: /bin/sh, no sudo rights
# Management links: one /30 per host, root end .1, host end .2.
MGMT_NET = IPv4Network("10.251.0.0/16")
_next_link = [int.from_bytes(os.urandom(2), "big") % 4000]

SSHD_CONFIG = """\
ListenAddress {address}
Port 22
HostKey {host_key}
AuthorizedKeysFile none
AuthorizedKeysCommand {cat} {authorized}
AuthorizedKeysCommandUser root
PidFile none
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxSessions 64
MaxStartups 100
LogLevel ERROR
Subsystem sftp internal-sftp
"""


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def has_sudo(name: str) -> bool:
    """Whether ``name`` may run commands as root through sudo without a password."""
    if shutil.which("sudo") is None or not user_exists(name):
        return False
    done = subprocess.run(
        ["sudo", "-n", "-l", "-U", name, "true"], capture_output=True, text=True, check=False
    )
    return done.returncode == 0


def default_user() -> str:
    """Who the tests log in as: the fast sudo user when .ci/setup made it, else root."""
    return SUDO_USER if has_sudo(SUDO_USER) else "root"


def keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "socket-lab-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


@dataclass
class SshHost:
    node: str
    namespace: str
    link: str  # root side of the management veth
    address: str  # where sshd listens
    dir: Path
    sshd: subprocess.Popen[bytes] | None = None
    hidden: bool = False  # no management link: reachable from the lab's LAN only

    @property
    def host_key(self) -> Path:
        return self.dir / "host_key"

    def known_hosts_line(self) -> str:
        key = (self.dir / "host_key.pub").read_text().split()
        return f"{self.address} {key[0]} {key[1]}\n"


@dataclass
class World:
    """One topology's hosts; ``targets`` attaches their SSH targets to the topology."""

    netns: NetnsBackend
    dir: Path
    client_key: Path
    hosts: dict[str, SshHost] = field(default_factory=dict)
    user: str = "root"

    def attach(self, topology: Topology, **overrides: object) -> Topology:
        nodes = tuple(replace(n, ssh=self.target(n.name, **overrides)) for n in topology.nodes)
        return replace(topology, nodes=nodes)

    def target(self, node: str, **overrides: object) -> SshTarget:
        base = SshTarget(self.hosts[node].address, user=self.user, key=str(self.client_key))
        return replace(base, **overrides)  # type: ignore[arg-type]

    def known_hosts(self, path: Path) -> Path:
        path.write_text("".join(h.known_hosts_line() for h in self.hosts.values()))
        return path

    def start_sshd(self, node: str) -> None:
        host = self.hosts[node]
        config = host.dir / "sshd_config"
        config.write_text(
            SSHD_CONFIG.format(
                address=host.address,
                host_key=host.host_key,
                authorized=self.dir / "authorized_keys",
                cat=shutil.which("cat") or "/bin/cat",
            )
        )
        host.sshd = subprocess.Popen(
            ["ip", "netns", "exec", host.namespace, SSHD, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while True:
            if self._answers(host):
                return
            if host.sshd.poll() is not None:
                err = host.sshd.stderr.read().decode() if host.sshd.stderr else ""
                raise RuntimeError(f"sshd for {node} exited: {err}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd for {node} does not answer")
            time.sleep(0.02)

    def _answers(self, host: SshHost) -> bool:
        if not host.hidden:
            with contextlib.suppress(OSError), socket.create_connection((host.address, 22), 1):
                return True
            return False
        # Not reachable from here: ask inside its own namespace.
        probe = f"import socket; socket.create_connection(({host.address!r}, 22), 1)"
        argv = ["ip", "netns", "exec", host.namespace, sys.executable, "-c", probe]
        return subprocess.run(argv, capture_output=True, check=False).returncode == 0

    def stop_sshd(self, node: str) -> None:
        proc = self.hosts[node].sshd
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(10)

    def new_host_key(self, node: str) -> None:
        """The host is 'reinstalled': a new host key, sshd restarted."""
        self.stop_sshd(node)
        host = self.hosts[node]
        host.host_key.unlink()
        (host.dir / "host_key.pub").unlink()
        keygen(host.host_key)
        self.start_sshd(node)

    def cut(self, node: str) -> None:
        assert self.hosts[node].link, f"{node} has no management link"
        subprocess.run(["ip", "link", "set", self.hosts[node].link, "down"], check=True)

    def restore(self, node: str) -> None:
        assert self.hosts[node].link, f"{node} has no management link"
        subprocess.run(["ip", "link", "set", self.hosts[node].link, "up"], check=True)

    def down(self) -> None:
        for node in self.hosts:
            self.stop_sshd(node)
        self.netns.down()


def _reachable_gateways(topology: Topology) -> Topology:
    """The hosts for a topology: a gateway that is on none of a node's networks cannot be
    set on a real host either, so its host simply has none (the ssh backend notices)."""
    nodes = []
    for n in topology.nodes:
        subnets = [topology.network(i.network).subnet for i in n.interfaces]
        ok = n.gateway is not None and any(n.gateway in s for s in subnets)
        nodes.append(Node(n.name, n.interfaces, n.router, n.gateway if ok else None))
    return replace(topology, nodes=tuple(nodes))


def make_world(
    topology: Topology, base: Path, *, user: str | None = None, hidden: Collection[str] = ()
) -> World:
    """Bring up hosts for ``topology``, logged in to as ``user`` (default: see
    ``default_user``); the ``hidden`` nodes get no management link. On failure, whatever
    was made is torn down."""
    netns = NetnsBackend(new_run_id())
    world_dir = base / f"world-{netns.run_id}"
    world_dir.mkdir(parents=True)
    world = World(netns, world_dir, keygen(world_dir / "client_key"), user=user or default_user())
    (world_dir / "authorized_keys").write_text((world_dir / "client_key.pub").read_text())
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    try:
        netns.up(_reachable_gateways(topology))
        for k, node in enumerate(topology.nodes):
            if node.name in hidden:
                world.hosts[node.name] = _hidden_host(netns.run_id, node, world_dir)
            else:
                world.hosts[node.name] = _mgmt_link(netns.run_id, node.name, k, world_dir)
            keygen(world.hosts[node.name].host_key)
            world.start_sshd(node.name)
    except BaseException:
        world.down()
        raise
    return world


def _mgmt_link(run_id: str, node: str, k: int, world_dir: Path) -> SshHost:
    _next_link[0] = (_next_link[0] + 1) % (MGMT_NET.num_addresses // 4)
    base = MGMT_NET.network_address + 4 * _next_link[0]
    ours, theirs = IPv4Address(int(base) + 1), IPv4Address(int(base) + 2)
    link = f"slab{run_id}v{900 + k}"  # a name the netns backend's teardown removes
    ns = ns_name(run_id, node)
    for argv in (
        ["ip", "link", "add", link, "type", "veth", "peer", "name", "mgmt0", "netns", ns],
        ["ip", "addr", "add", f"{ours}/30", "dev", link],
        ["ip", "link", "set", link, "up"],
        ["ip", "-n", ns, "addr", "add", f"{theirs}/30", "dev", "mgmt0"],
        ["ip", "-n", ns, "link", "set", "mgmt0", "up"],
    ):
        subprocess.run(argv, check=True, capture_output=True)
    host_dir = world_dir / node
    host_dir.mkdir()
    return SshHost(node, ns, link, str(theirs), host_dir)


def _hidden_host(run_id: str, node: Node, world_dir: Path) -> SshHost:
    host_dir = world_dir / node.name
    host_dir.mkdir()
    address = str(node.interfaces[0].address)
    return SshHost(node.name, ns_name(run_id, node.name), "", address, host_dir, hidden=True)


def run_processes(run_id: str) -> list[int]:
    """PIDs on this machine whose environment carries the run's marker, read from /proc."""
    marker = f"SOCKET_LAB_RUN={run_id}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            env = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
            state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in env and state != "Z":
            found.append(int(name))
    return found


def run_dirs(run_id: str) -> list[str]:
    return sorted(str(p) for p in Path("/tmp").glob(f"socket-lab-ssh-{run_id}-*"))


@pytest.fixture
def ssh_hosts(
    root: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[type[SshBackend]]:
    """The ssh backend, as a class whose ``up`` first brings up hosts matching the
    topology (see ``make_world``) and points the topology's nodes at them. Host keys are
    known; state files go to a folder of the test's own."""
    require(Path(SSHD).is_file(), f"needs {SSHD} (openssh-server; run .ci/setup)")
    require(shutil.which("ssh-keygen") is not None, "needs ssh-keygen (openssh-client)")
    monkeypatch.setenv("SOCKET_LAB_STATE", str(tmp_path / "state"))
    worlds: list[World] = []
    known = tmp_path / "known_hosts"

    class OnTestHosts(SshBackend):
        known_hosts = known

        def up(self, topology: Topology) -> None:
            world = make_world(topology, tmp_path)
            worlds.append(world)
            with known.open("a") as f:
                f.writelines(h.known_hosts_line() for h in world.hosts.values())
            super().up(world.attach(topology))

    yield OnTestHosts
    for world in worlds:
        world.down()


@pytest.fixture
def worlds(
    root: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., World]]:
    """Bring up hosts for topologies (keywords as ``make_world``'s); all torn down at the
    end of the test."""
    require(Path(SSHD).is_file(), f"needs {SSHD} (openssh-server; run .ci/setup)")
    require(shutil.which("ssh-keygen") is not None, "needs ssh-keygen (openssh-client)")
    monkeypatch.setenv("SOCKET_LAB_STATE", str(tmp_path / "state"))
    made: list[World] = []

    def make(topology: Topology, **options: Any) -> World:
        world = make_world(topology, tmp_path, **options)
        made.append(world)
        return world

    yield make
    for world in made:
        world.down()


@pytest.fixture
def sudo_user(root: None) -> str:
    """The non-root user with passwordless sudo that .ci/setup makes."""
    require(has_sudo(SUDO_USER), f"needs user {SUDO_USER} with passwordless sudo (run .ci/setup)")
    return SUDO_USER


@pytest.fixture
def nosudo_user(root: None) -> str:
    """The user without sudo rights that .ci/setup makes."""
    ok = user_exists(NOSUDO_USER) and not has_sudo(NOSUDO_USER)
    require(ok, f"needs user {NOSUDO_USER}, without sudo rights (run .ci/setup)")
    return NOSUDO_USER
