"""The backend contract, checked against every real backend through the Backend interface only.

Each test brings up a small topology built from ``lab.spec.model`` dataclasses, acts on it
with ``run``/``spawn``/``fetch`` and checks what the nodes see with stdlib one-liners
(no ping, no iproute2 inside the nodes). Leftovers are judged by the backend's own
name-based discovery: after ``down``, ``clean(rid)`` must find nothing to remove.
"""

from __future__ import annotations

import json
import signal
import textwrap
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lab.errors import BackendError, CommandTimeout
from lab.run.backends import backend_class
from lab.run.backends.base import Backend, Proc, new_run_id
from lab.spec.model import Interface, Network, Node, Topology
from tests.ssh.hosts import MGMT_NET, ssh_hosts

BACKENDS = ["netns", "docker", "ssh", "swarm"]

# The fixture (from tests/conftest.py or here) that checks a backend can run here. The
# ssh backend drives existing hosts: its fixture gives the backend class, whose up()
# first brings up real sshd hosts that match the topology (tests/ssh/hosts.py).
CAPABILITY = {
    "netns": "root",
    "docker": "docker_engine",
    "ssh": "ssh_hosts",
    "swarm": "swarm_backend",
}
__all__ = ["ssh_hosts"]

A = IPv4Address


# -- topologies ---------------------------------------------------------------------------


def lan(*names: str, subnet: str = "10.20.0.0/24") -> Topology:
    """Nodes on one network, addressed .10, .11, ... in order."""
    net = IPv4Network(subnet)
    nodes = tuple(
        Node(name, (Interface("lan", net.network_address + 10 + k),))
        for k, name in enumerate(names)
    )
    return Topology("lan", (Network("lan", net),), nodes)


def routed() -> Topology:
    """h1 -- left -- r -- right -- h2, with default routes through r."""
    return Topology(
        "routed",
        (
            Network("left", IPv4Network("10.30.1.0/24")),
            Network("right", IPv4Network("10.30.2.0/24")),
        ),
        (
            Node("h1", (Interface("left", A("10.30.1.10")),), gateway=A("10.30.1.1")),
            Node(
                "r",
                (Interface("left", A("10.30.1.1")), Interface("right", A("10.30.2.1"))),
                router=True,
            ),
            Node("h2", (Interface("right", A("10.30.2.10")),), gateway=A("10.30.2.1")),
        ),
    )


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(params=[pytest.param(name, marks=getattr(pytest.mark, name)) for name in BACKENDS])
def backend_cls(request: pytest.FixtureRequest) -> type[Backend]:
    provided = request.getfixturevalue(CAPABILITY[request.param])
    cls = provided if isinstance(provided, type) else backend_class(request.param)
    reason = cls.available()
    assert reason is None, reason
    return cls


@pytest.fixture
def make(backend_cls: type[Backend]) -> Iterator[Callable[[Topology], Backend]]:
    """Bring topologies up on fresh run ids; every one is torn down at the end."""
    started: list[Backend] = []

    def up(topology: Topology) -> Backend:
        backend = backend_cls(new_run_id())
        started.append(backend)
        backend.up(topology)
        return backend

    yield up
    for backend in started:
        backend.down()
        assert backend_cls.clean(backend.run_id) == []


# -- what the nodes see, in stdlib one-liners -----------------------------------------------

IFADDRS = textwrap.dedent(
    """
    import fcntl, json, socket, struct, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out = {}
    for index, name in socket.if_nameindex():
        req = struct.pack("256s", name.encode())
        try:
            addr = socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])  # SIOCGIFADDR
            mask = socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x891B, req)[20:24])  # SIOCGIFNETMASK
        except OSError:
            continue
        prefix = bin(struct.unpack("!I", socket.inet_aton(mask))[0]).count("1")
        out[name] = f"{addr}/{prefix}"
    print(json.dumps(out))
    """
)

# A TCP echo server: one line back per connection, for as long as it runs.
TCP_ECHO = textwrap.dedent(
    """
    import socket, sys
    srv = socket.create_server(("0.0.0.0", int(sys.argv[1])))
    print("listening", flush=True)
    while True:
        conn, peer = srv.accept()
        with conn:
            conn.sendall(b"echo " + conn.recv(1024))
    """
)

# Connects (retrying while the server starts), sends argv[3], prints the reply.
TCP_CLIENT = textwrap.dedent(
    """
    import socket, sys, time
    for attempt in range(100):
        try:
            c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
            break
        except OSError:
            time.sleep(0.05)
    else:
        sys.exit("could not connect")
    c.sendall(sys.argv[3].encode())
    print(c.recv(1024).decode())
    """
)

# A UDP server that answers each datagram with the TTL it arrived with and its source.
UDP_TTL_SERVER = textwrap.dedent(
    """
    import socket, struct, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, 12, 1)  # IP_RECVTTL
    s.bind(("0.0.0.0", int(sys.argv[1])))
    while True:
        data, anc, flags, peer = s.recvmsg(1024, socket.CMSG_SPACE(4))
        ttl = [struct.unpack("i", d)[0] for lvl, typ, d in anc if typ == socket.IP_TTL]
        s.sendto(f"{ttl[0]} {peer[0]}".encode(), peer)
    """
)

# Sends with TTL 64 until answered (argv[3] tries, 0.2 s apart); prints
# "<ttl seen by server> <source seen by server>".
UDP_TTL_CLIENT = textwrap.dedent(
    """
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
    s.settimeout(0.2)
    for attempt in range(int(sys.argv[3])):
        s.sendto(b"ttl?", (sys.argv[1], int(sys.argv[2])))
        try:
            print(s.recv(1024).decode())
            break
        except TimeoutError:
            pass
    else:
        sys.exit("no answer")
    """
)

# Prints which of the PIDs in argv are alive (a zombie counts as gone).
ALIVE = textwrap.dedent(
    """
    import sys
    alive = []
    for pid in sys.argv[1:]:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    print(" ".join(alive))
    """
)


def py(backend: Backend, node: str, script: str, *args: str, timeout: float = 30.0) -> str:
    done = backend.run(node, [backend.python, "-c", script, *args], timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


def alive(backend: Backend, node: str, *pids: int) -> list[int]:
    return [int(p) for p in py(backend, node, ALIVE, *map(str, pids)).split()]


# -- bringing hosts up ------------------------------------------------------------------------


def test_up_gives_each_node_its_interfaces_and_addresses(
    make: Callable[[Topology], Backend],
) -> None:
    topo = routed()
    backend = make(topo)
    for node in topo.nodes:
        names = backend.interfaces(node.name)
        assert sorted(names) == sorted(node.networks)
        assert len(set(names.values())) == len(node.interfaces)
        seen = json.loads(py(backend, node.name, IFADDRS))
        for iface in node.interfaces:
            prefix = topo.network(iface.network).subnet.prefixlen
            assert seen[names[iface.network]] == f"{iface.address}/{prefix}"
        # Real hosts have more than the lab's interfaces: the ssh tests' hosts are also
        # on a management link, which is how they are reached.
        lab_addrs = {
            v
            for k, v in seen.items()
            if not v.startswith("127.") and IPv4Address(v.split("/")[0]) not in MGMT_NET
        }
        assert len(lab_addrs) == len(node.interfaces)


def test_two_nodes_on_a_lan_talk_tcp(make: Callable[[Topology], Backend]) -> None:
    backend = make(lan("srv", "cli"))
    log = backend.workdir("srv") / "echo.log"
    server = backend.spawn("srv", [backend.python, "-c", TCP_ECHO, "7001"], log=log)
    reply = py(backend, "cli", TCP_CLIENT, "10.20.0.10", "7001", "hello")
    assert reply.strip() == "echo hello"
    server.stop()


def test_routed_topology_reaches_across_the_router(make: Callable[[Topology], Backend]) -> None:
    backend = make(routed())
    log = backend.workdir("h2") / "udp.log"
    backend.spawn("h2", [backend.python, "-c", UDP_TTL_SERVER, "7002"], log=log)
    ttl, source = py(backend, "h1", UDP_TTL_CLIENT, "10.30.2.10", "7002", "100").split()
    # One router hop: the TTL went down by one, and the source address was not rewritten.
    assert (int(ttl), source) == (63, "10.30.1.10")
    # The router itself is directly attached: no hop, no decrement.
    ttl, source = py(backend, "r", UDP_TTL_CLIENT, "10.30.2.10", "7002", "100").split()
    assert (int(ttl), source) == (64, "10.30.2.1")


def test_a_host_without_forwarding_does_not_route(make: Callable[[Topology], Backend]) -> None:
    topo = routed()
    nodes = tuple(Node(n.name, n.interfaces, False, n.gateway) for n in topo.nodes)
    backend = make(Topology("no-forwarding", topo.networks, nodes))
    backend.spawn(
        "h2", [backend.python, "-c", UDP_TTL_SERVER, "7003"], log=backend.workdir("h2") / "u.log"
    )
    done = backend.run(
        "h1", [backend.python, "-c", UDP_TTL_CLIENT, "10.30.2.10", "7003", "5"], timeout=30
    )
    assert done.returncode != 0
    assert "no answer" in done.stderr


# -- running commands ----------------------------------------------------------------------


def test_run_returns_exit_code_stdout_and_stderr(make: Callable[[Topology], Backend]) -> None:
    backend = make(lan("h1"))
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    done = backend.run("h1", [backend.python, "-c", script])
    assert (done.returncode, done.stdout, done.stderr, done.ok) == (3, "out\n", "err\n", False)
    echoed = backend.run("h1", [backend.python, "-c", "print(input()[::-1])"], input="abc\n")
    assert echoed.ok
    assert echoed.stdout == "cba\n"


def test_run_timeout_raises_and_leaves_no_process(make: Callable[[Topology], Backend]) -> None:
    backend = make(lan("h1"))
    pidfile = backend.workdir("h1") / "pids"
    script = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open({str(pidfile)!r}, "w") as f:
            f.write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(60)
        """
    )
    with pytest.raises(CommandTimeout):
        backend.run("h1", [backend.python, "-c", script], timeout=1.5)
    pids = [int(p) for p in py(backend, "h1", f"print(open({str(pidfile)!r}).read())").split()]
    assert len(pids) == 2
    assert alive(backend, "h1", *pids) == []


def test_spawn_then_stop(make: Callable[[Topology], Backend], tmp_path: Path) -> None:
    backend = make(lan("h1"))
    log = backend.workdir("h1") / "sleeper.log"
    script = (
        "import sys, time; print('started'); print('to stderr', file=sys.stderr); time.sleep(60)"
    )
    proc = backend.spawn("h1", [backend.python, "-u", "-c", script], log=log)
    assert proc.node == "h1"
    assert proc.running()
    assert proc.wait(0.1) is None
    assert alive(backend, "h1", proc.pid) == [proc.pid]
    assert proc.stop(timeout=5) == -signal.SIGTERM
    assert not proc.running()
    assert alive(backend, "h1", proc.pid) == []
    proc.signal(signal.SIGTERM)  # no error once it has exited
    backend.fetch("h1", backend.workdir("h1"), tmp_path / "h1")
    assert (tmp_path / "h1" / "sleeper.log").read_text().splitlines() == ["started", "to stderr"]


def test_spawns_at_once_each_get_their_own_pid(make: Callable[[Topology], Backend]) -> None:
    """Services start in threads: each spawn's pid is its own program's, however the
    spawns interleave (docker's pid file numbers were read back from a shared counter
    after the increment, so two spawns could take one file)."""
    backend = make(lan("h1"))
    marks = [f"spawn-mark-{k}" for k in range(8)]

    def start(mark: str) -> Proc:
        argv = [backend.python, "-c", "import time; time.sleep(60)", mark]
        return backend.spawn("h1", argv, log=backend.workdir("h1") / f"{mark}.log")

    with ThreadPoolExecutor(len(marks)) as pool:
        procs = list(pool.map(start, marks))
    try:
        assert len({p.pid for p in procs}) == len(marks)
        script = (
            "import sys\nfor pid in sys.argv[1:]:\n"
            "    print(open(f'/proc/{pid}/cmdline').read().split(chr(0))[-2])"
        )
        seen = py(backend, "h1", script, *(str(p.pid) for p in procs)).split()
        assert seen == marks
    finally:
        for p in procs:
            p.stop(timeout=5)


def test_spawned_process_exit_status(make: Callable[[Topology], Backend]) -> None:
    backend = make(lan("h1"))
    log = backend.workdir("h1") / "quick.log"
    proc = backend.spawn("h1", [backend.python, "-c", "raise SystemExit(5)"], log=log)
    assert proc.wait(30) == 5
    assert not proc.running()
    assert proc.stop() == 5


def test_workdir_exists_and_fetch_copies_files(
    make: Callable[[Topology], Backend], tmp_path: Path
) -> None:
    backend = make(lan("h1", "h2"))
    wd1, wd2 = backend.workdir("h1"), backend.workdir("h2")
    assert wd1 != wd2
    script = textwrap.dedent(
        """
        import os, sys
        os.makedirs(os.path.join(sys.argv[1], "sub"), exist_ok=True)
        with open(os.path.join(sys.argv[1], "sub", "note.txt"), "w") as f:
            f.write("written on " + sys.argv[2])
        """
    )
    py(backend, "h1", script, str(wd1), "h1")
    backend.fetch("h1", wd1, tmp_path / "out")
    assert (tmp_path / "out" / "sub" / "note.txt").read_text() == "written on h1"
    # Each node's directory is its own: h2's holds nothing of h1's.
    backend.fetch("h2", wd2, tmp_path / "out2")
    assert not (tmp_path / "out2" / "sub").exists()


# -- tearing down ---------------------------------------------------------------------------


def test_down_removes_everything_and_is_idempotent(backend_cls: type[Backend]) -> None:
    backend = backend_cls(new_run_id())
    try:
        backend.up(routed())
        assert backend.run_id in backend_cls.running_labs()
        proc = backend.spawn(
            "r", [backend.python, "-c", "import time; time.sleep(60)"],
            log=backend.workdir("r") / "sleep.log",
        )  # fmt: skip
        assert proc.running()
    finally:
        backend.down()
    assert not proc.running()
    assert backend.run_id not in backend_cls.running_labs()
    assert backend_cls.clean(backend.run_id) == []
    backend.down()
    assert backend_cls.clean(backend.run_id) == []


def test_down_after_a_failed_up_leaves_nothing(backend_cls: type[Backend]) -> None:
    topo = routed()
    # A gateway on no attached subnet: found only once addresses are set, part-way up.
    h1 = topo.node("h1")
    broken = Node(h1.name, h1.interfaces, gateway=A("192.0.2.1"))
    topo = Topology("broken", topo.networks, (*topo.nodes[1:], broken))
    backend = backend_cls(new_run_id())
    try:
        with pytest.raises(BackendError):
            backend.up(topo)
    finally:
        backend.down()
    assert backend.run_id not in backend_cls.running_labs()
    assert backend_cls.clean(backend.run_id) == []


def test_clean_removes_a_run_whose_owner_never_called_down(backend_cls: type[Backend]) -> None:
    backend = backend_cls(new_run_id())
    try:
        backend.up(lan("h1", "h2"))
        proc = backend.spawn(
            "h1", [backend.python, "-c", "import time; time.sleep(60)"],
            log=backend.workdir("h1") / "s.log",
        )  # fmt: skip
        removed = backend_cls.clean(backend.run_id)
        assert removed
        assert not proc.running()
        assert backend.run_id not in backend_cls.running_labs()
        assert backend_cls.clean(backend.run_id) == []
    finally:
        backend.down()


def test_two_runs_of_one_topology_do_not_collide(backend_cls: type[Backend]) -> None:
    topo = lan("srv", "cli")
    first, second = backend_cls(new_run_id()), backend_cls(new_run_id())
    try:
        first.up(topo)
        second.up(topo)
        for backend, tag in ((first, "first"), (second, "second")):
            backend.spawn(
                "srv", [backend.python, "-c", TCP_ECHO, "7004"],
                log=backend.workdir("srv") / "echo.log",
            )  # fmt: skip
            assert (
                py(backend, "cli", TCP_CLIENT, "10.20.0.10", "7004", tag).strip() == f"echo {tag}"
            )
        first.down()
        # The second run is untouched by the first one's teardown, and still works.
        assert second.run_id in backend_cls.running_labs()
        assert py(second, "cli", TCP_CLIENT, "10.20.0.10", "7004", "again").strip() == "echo again"
    finally:
        first.down()
        second.down()
    assert backend_cls.clean(first.run_id) == []
    assert backend_cls.clean(second.run_id) == []


def test_teardown_of_one_run_spares_another_runs_objects(backend_cls: type[Backend]) -> None:
    ours, theirs = backend_cls(new_run_id()), backend_cls(new_run_id())
    try:
        theirs.up(lan("h1"))
        proc = theirs.spawn(
            "h1", [theirs.python, "-c", "import time; time.sleep(60)"],
            log=theirs.workdir("h1") / "s.log",
        )  # fmt: skip
        py(
            theirs,
            "h1",
            "import sys; open(sys.argv[1], 'w').write('x')",
            str(theirs.workdir("h1") / "f"),
        )
        ours.up(lan("h1"))
        ours.down()
        assert backend_cls.clean(ours.run_id) == []
        assert proc.running()
        assert theirs.run_id in backend_cls.running_labs()
        assert (
            py(
                theirs,
                "h1",
                "import sys; print(open(sys.argv[1]).read())",
                str(theirs.workdir("h1") / "f"),
            ).strip()
            == "x"
        )
    finally:
        ours.down()
        theirs.down()
    assert not proc.running()
