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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lab.errors import CommandTimeout
from lab.run.backends.base import Backend, Proc
from lab.spec.model import Node, Topology
from tests.backends.contract_kit import (
    IFADDRS,
    TCP_CLIENT,
    TCP_ECHO,
    UDP_TTL_CLIENT,
    UDP_TTL_SERVER,
    A,
    alive,
    lan,
    py,
    routed,
)
from tests.ssh.hosts import MGMT_NET

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
            if not v.startswith("127.") and A(v.split("/")[0]) not in MGMT_NET
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
        # Time for two interpreters to start (the script's and its child's) on a loaded
        # machine; the pid file must be written before the timeout stops them.
        backend.run("h1", [backend.python, "-c", script], timeout=5)
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
