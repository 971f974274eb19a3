"""The swarm backend on a real two-engine swarm (tests/swarm/twoengines.py): the shipped
topologies pass with their nodes spread over both engines, each container where the
placement says, MSS shows the overlay's MTU, and nothing of a run is left on either engine,
however it ends."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import docker
import pytest

from lab.deploy.images import node_image
from lab.run.backends.base import new_run_id
from lab.run.backends.docker import RUN_LABEL
from lab.run.backends.swarm import ENGINE_LABEL, SwarmBackend, load_engines
from lab.run.backends.swarm.cluster import open_cluster
from lab.run.backends.swarm.images import ensure_image, has_image
from lab.spec.model import Interface, Network, Node, Topology
from lab.spec.topology import load_topology
from tests.backends.contract_kit import routed
from tests.labcli import ROOT, lab
from tests.leftovers import run_id_of, signal_lab_run_at
from tests.swarm.twoengines import TwoEngines

TOPOLOGIES = ROOT / "topologies"
A = IPv4Address


@pytest.fixture
def engines_file(two_engines: TwoEngines, tmp_path: Path) -> Path:
    return two_engines.engines_file(tmp_path)


def leftovers(clients: dict[str, docker.DockerClient], run_id: str) -> list[str]:
    """Containers and networks of a run on any engine, found by label."""
    match = {"label": f"{RUN_LABEL}={run_id}"}
    found = []
    for name, c in clients.items():
        found += [
            f"container {x['Names'][0]} on {name}"
            for x in c.api.containers(all=True, filters=match)
        ]
        found += [f"network {x['Name']} on {name}" for x in c.api.networks(filters=match)]
    return found


@pytest.mark.slow
@pytest.mark.parametrize("topology", ["default", "routed"])
def test_shipped_topologies_pass_across_both_engines(
    two_engines: TwoEngines,
    engines_file: Path,
    clients: dict[str, docker.DockerClient],
    tmp_path: Path,
    topology: str,
) -> None:
    out = tmp_path / topology
    done = lab(
        "run", str(TOPOLOGIES / f"{topology}.yaml"), "--backend", "swarm",
        "--engines", str(engines_file), "--out", str(out), timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads((out / "run.json").read_text())
    hosts = {node: rec.get("host") for node, rec in run["nodes"].items()}
    engine_of = {node: str(h).removeprefix("swarm engine ") for node, h in hosts.items()}
    assert set(engine_of.values()) == {two_engines.manager_host, two_engines.worker_host}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] is True
    # The report names each node's engine, and says why the MSS is smaller.
    page = (out / "report.html").read_text()
    for node, engine in engine_of.items():
        assert f"{node} on swarm engine {engine}" in page
    assert "MSS is 1410, not 1460" in page
    topo = load_topology(TOPOLOGIES / f"{topology}.yaml")
    server_of = {sv.name: sv.node for sv in topo.services}
    for sc in topo.scenarios:
        for client in sc.clients:
            assert engine_of[client] != engine_of[server_of[sc.service]], (sc.name, engine_of)
    assert leftovers(clients, run_id_of(out)) == []


@pytest.mark.slow
def test_two_labs_of_one_topology_at_once_across_the_engines(
    engines_file: Path, clients: dict[str, docker.DockerClient], tmp_path: Path
) -> None:
    """The same topology twice at once: the same subnets, addresses and node names on the
    same engines, each run on its own overlay networks; both pass and both clean up. Held
    connections are held longer than the shipped 2 s: two labs at once on a shared machine
    can take that long to reach the "during" snapshot."""
    topology = tmp_path / "default.yaml"
    text = (TOPOLOGIES / "default.yaml").read_text()
    longer, held = re.subn(r"hold: 2\b", "hold: 8", text)
    assert held == 2
    topology.write_text(longer)
    argv = [sys.executable, "-m", "lab.cli", "run", str(topology),
            "--backend", "swarm", "--engines", str(engines_file), "--quiet"]  # fmt: skip
    procs = [
        subprocess.Popen(
            [*argv, "--out", str(tmp_path / f"run{k}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for k in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, (out[-2000:], err[-2000:])
    ids = {run_id_of(tmp_path / f"run{k}") for k in range(2)}
    assert len(ids) == 2
    for rid in ids:
        assert leftovers(clients, rid) == []


# Connects to argv[1]:argv[2] and prints the interface MTU path's MSS the kernel settled on.
MSS_CLIENT = textwrap.dedent(
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
    print(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))
    """
)
LISTEN = "import socket, sys, time; s = socket.create_server(('0.0.0.0', 7010)); time.sleep(60)"


def test_each_container_runs_on_its_placed_engine_and_mss_shows_the_overlay(
    two_engines: TwoEngines,
    swarm_backend: type[SwarmBackend],
    clients: dict[str, docker.DockerClient],
) -> None:
    """h1 is put on the worker by its `engine:` key; the rest is spread. Each engine's own
    API (not the backend's) says which containers it runs."""
    topo = routed()
    h1 = topo.node("h1")
    pinned = Node(h1.name, h1.interfaces, gateway=h1.gateway, engine=two_engines.worker_host)
    topo = Topology(topo.name, topo.networks, (pinned, *topo.nodes[1:]))
    backend = swarm_backend(new_run_id())
    try:
        backend.up(topo)
        seen: dict[str, str] = {}
        for name, c in clients.items():
            for x in c.api.containers(filters={"label": f"{RUN_LABEL}={backend.run_id}"}):
                seen[x["Labels"]["socket-lab.node"]] = name
                assert x["Labels"][ENGINE_LABEL] == name
        assert seen == {n.name: backend.engine_of(n.name) for n in topo.nodes}
        assert seen["h1"] == two_engines.worker_host
        assert set(seen.values()) == set(clients)
        backend.spawn("h2", [backend.python, "-c", LISTEN], log=backend.workdir("h2") / "l.log")
        done = backend.run("h1", [backend.python, "-c", MSS_CLIENT, "10.30.2.10", "7010"])
        assert done.ok, done.stderr
        # VXLAN's 50 bytes inside the engines' 1500: MTU 1450, MSS 1450 - 40 = 1410, and
        # 1398 of data per segment when TCP timestamps take 12 bytes of each.
        assert int(done.stdout) in (1398, 1410)
        mtu = backend.run("h1", ["cat", f"/sys/class/net/{backend.interfaces('h1')['left']}/mtu"])
        assert mtu.stdout.strip() == "1450"
    finally:
        backend.down()
    assert leftovers(clients, backend.run_id) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("when", "signum", "code"),
    [
        ("bringing up", signal.SIGINT, 130),
        ("snapshot: before", signal.SIGINT, 130),
        ("scenario", signal.SIGTERM, 1),
        ("clients finished", signal.SIGINT, 130),
        ("tearing down", signal.SIGTERM, 1),
    ],
)
def test_a_signalled_run_leaves_nothing_on_either_engine(
    engines_file: Path,
    clients: dict[str, docker.DockerClient],
    tmp_path: Path,
    when: str,
    signum: int,
    code: int,
) -> None:
    out = tmp_path / "int"
    proc, seen = signal_lab_run_at(
        TOPOLOGIES / "default.yaml", out, when, signum, ROOT, "swarm",
        ("--engines", str(engines_file)),
    )  # fmt: skip
    _, rest = proc.communicate(timeout=300)
    assert any(when in line for line in seen), "".join(seen)
    assert proc.returncode == code, "".join(seen) + rest
    assert "interrupted by" in rest
    run = json.loads((out / "run.json").read_text())
    assert run["interrupted"] == signal.Signals(signum).name
    assert leftovers(clients, run_id_of(out)) == []


def test_a_worker_alone_is_refused(two_engines: TwoEngines, tmp_path: Path) -> None:
    path = tmp_path / "worker.yaml"
    path.write_text(f"{two_engines.worker_host}: {two_engines.worker_url}\n")
    done = lab(
        "run", str(TOPOLOGIES / "default.yaml"), "--backend", "swarm", "--engines", str(path)
    )
    assert done.returncode != 0
    assert "a worker of the swarm, not a manager" in done.stderr
    assert two_engines.worker_host in done.stderr


def test_an_engine_named_for_another_node_is_refused(
    two_engines: TwoEngines, tmp_path: Path
) -> None:
    path = tmp_path / "swapped.yaml"
    path.write_text(
        f"{two_engines.manager_host}: {two_engines.worker_url}\n"
        f"{two_engines.worker_host}: {two_engines.manager_url}\n"
    )
    done = lab(
        "run", str(TOPOLOGIES / "default.yaml"), "--backend", "swarm", "--engines", str(path)
    )
    assert done.returncode != 0
    assert f"reaches swarm node {two_engines.worker_host}" in done.stderr


def test_lab_ls_lists_a_run_with_its_containers_on_each_engine(
    two_engines: TwoEngines,
    swarm_backend: type[SwarmBackend],
    engines_file: Path,
    clients: dict[str, docker.DockerClient],
) -> None:
    backend = swarm_backend(new_run_id())
    try:
        backend.up(routed())
        done = lab("ls", "--engines", str(engines_file), "--json")
        assert done.returncode == 0, done.stderr
        rows = {r["run_id"]: r for r in json.loads(done.stdout)}
        what = rows[backend.run_id]["objects"]
        on = {backend.engine_of(n) for n in ("h1", "r", "h2")}
        assert len(on) == 2
        for engine in on:
            count = sum(1 for n in ("h1", "r", "h2") if backend.engine_of(n) == engine)
            assert f"{count} on {engine}" in what, what
        assert "2 networks" in what
        assert rows[backend.run_id]["backend"] == "swarm"
    finally:
        backend.down()
    assert leftovers(clients, backend.run_id) == []


def test_the_node_image_is_sent_only_where_missing(
    two_engines: TwoEngines, swarm_backend: type[SwarmBackend]
) -> None:
    image = node_image()
    assert image is not None
    assert swarm_backend.engines_file is not None
    cluster = open_cluster(swarm_backend.engines_file)
    try:
        worker = cluster.by_name(two_engines.worker_host)
        # The worker is the tests' own engine: its copy may go, and is sent again.
        if has_image(worker.api, image):
            worker.api.remove_image(image)
        assert not has_image(worker.api, image)
        assert ensure_image(cluster, image) == [two_engines.worker_host]
        assert has_image(worker.api, image)
        # Current everywhere (its tag carries the inputs' hash): nothing is sent.
        assert ensure_image(cluster, image) == []
    finally:
        cluster.close()


def test_an_engine_over_tcp_with_tls_runs_its_nodes(
    two_engines: TwoEngines, clients: dict[str, docker.DockerClient], tmp_path: Path
) -> None:
    """The second engine reached at tcp:// with the tests' own CA and client certificate."""
    engines = two_engines.tls_engines_file(tmp_path)
    out = tmp_path / "tls"
    done = lab(
        "run", str(TOPOLOGIES / "routed.yaml"), "--backend", "swarm",
        "--engines", str(engines), "--out", str(out), timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads((out / "run.json").read_text())
    hosts = {str(r.get("host")) for r in run["nodes"].values()}
    assert f"swarm engine {two_engines.worker_host}" in hosts
    assert leftovers(clients, run_id_of(out)) == []
    # A command's stdin reaches a node over TLS too (where a TLS socket cannot half-close).
    backend = SwarmBackend.configured(load_engines(engines))(new_run_id())
    net = IPv4Network("10.20.0.0/24")
    node = Node("h1", (Interface("lan", net[10]),), engine=two_engines.worker_host)
    try:
        backend.up(Topology("lan", (Network("lan", net),), (node,)))
        echoed = backend.run("h1", [backend.python, "-c", "print(input()[::-1])"], input="abc\n")
        assert (echoed.returncode, echoed.stdout) == (0, "cba\n")
        assert echoed.argv == (backend.python, "-c", "print(input()[::-1])")
        plain = backend.run("h1", ["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert (plain.returncode, plain.stdout, plain.stderr) == (3, "out\n", "err\n")
    finally:
        backend.down()
    assert leftovers(clients, backend.run_id) == []
