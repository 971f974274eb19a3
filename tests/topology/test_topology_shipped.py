"""The topologies shipped in topologies/ load, and say what they promise."""

from __future__ import annotations

from ipaddress import IPv4Network
from itertools import combinations
from pathlib import Path

import pytest

import lab.programs
from lab.programs.dict_server import load_dictionary
from lab.spec.model import Topology
from lab.spec.topology import find_overlaps, load_topology, validate_file

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"
SHIPPED = sorted(TOPOLOGIES.glob("*.yaml"))


def load(name: str) -> Topology:
    return load_topology(TOPOLOGIES / f"{name}.yaml")


def test_the_three_topologies_are_shipped() -> None:
    assert {p.stem for p in SHIPPED} >= {"default", "routed", "scale"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_topology_is_valid(path: Path) -> None:
    assert validate_file(path) == []
    topology = load_topology(path)
    assert topology.name == path.stem
    assert topology.source == path
    assert topology.scenarios, "a shipped topology has something to run"


def test_shipped_subnets_never_overlap_so_any_two_can_run_side_by_side() -> None:
    # Docker refuses overlapping networks; two labs at once need distinct subnets.
    subnets = [n.subnet for p in SHIPPED for n in load_topology(p).networks]
    assert find_overlaps(subnets) == []
    for a, b in combinations(subnets, 2):
        assert not a.overlaps(b)
    assert all(s.subnet_of(IPv4Network("10.77.0.0/16")) for s in subnets)


def test_default_runs_all_four_servers_on_one_node() -> None:
    t = load("default")
    ports = {(s.program, s.protocol, s.port) for s in t.services}
    assert ports == {
        ("fork_server", "tcp", 9999),
        ("thread_server", "tcp", 8000),
        ("udp_echo", "udp", 8080),
        ("dict_server", "tcp", 8080),
    }
    assert {s.node for s in t.services} == {"server"}
    assert len(t.networks) == 1
    used = {t.service(sc.service).program for sc in t.scenarios}
    assert used == {"fork_server", "thread_server", "udp_echo", "dict_server"}


def test_default_holds_fork_and_thread_connections_open() -> None:
    t = load("default")
    for sc in t.scenarios:
        if t.service(sc.service).program in {"fork_server", "thread_server"}:
            assert sc.concurrency > 1 and sc.hold > 0
            assert len(sc.clients) == 2


def test_default_dictionary_translates_and_passes_unknown_words() -> None:
    t = load("default")
    (sc,) = [s for s in t.scenarios if t.service(s.service).program == "dict_server"]
    pairs = dict(zip(sc.send, sc.expect, strict=True))
    assert pairs["hello"] == "你好" and pairs["world"] == "世界" and pairs["love"] == "爱"
    table = load_dictionary()
    unknown = [w for w in sc.send if w not in table and w.lower() not in table]
    assert unknown and all(pairs[w] == w for w in unknown)


# The C programs of c.yaml, by the Python program each is the twin of.
C_TWINS = {
    "fork-server": "fork_server",
    "thread-server": "thread_server",
    "udp-echo-server": "udp_echo",
    "dict-server": "dict_server",
}


def test_c_is_the_default_lab_with_the_c_programs() -> None:
    """Same services (ports, protocols), same scenarios, every program built from the lab's
    own C sources; the clients are the C ones."""
    c, default = load("c"), load("default")
    assert {(s.name, C_TWINS[s.program], s.protocol, s.port) for s in c.services} == {
        (s.name, s.program, s.protocol, s.port) for s in default.services
    }
    assert [s.user is not None for s in c.services] == [True] * len(c.services)
    for ours, theirs in zip(c.scenarios, default.scenarios, strict=True):
        same = ("name", "service", "send", "expect", "concurrency", "hold")
        assert [getattr(ours, k) for k in same] == [getattr(theirs, k) for k in same]
        assert len(ours.clients) == len(theirs.clients)
        assert ours.client_program in ("str-cli", "udp-echo-client")
    shipped = Path(lab.programs.__file__).resolve().parent
    for program in c.programs:
        assert all(src.is_relative_to(shipped) for src in program.sources), program.name
        assert program.written[0].startswith("lab:c/")


def expected_reply(program: str, item: str, table: dict[str, str]) -> str:
    """What each server sends back for one item, as the programs document it."""
    program = C_TWINS.get(program, program)
    if program == "dict_server":
        return table.get(item) or table.get(item.lower()) or item
    if program == "udp_echo":
        return item
    return item.encode().upper().decode()  # the echo servers upper-case ASCII, as toupper()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_expected_reply_is_what_the_server_sends(path: Path) -> None:
    t = load_topology(path)
    table = load_dictionary()
    for sc in t.scenarios:
        program = t.service(sc.service).program
        assert list(sc.expect) == [expected_reply(program, item, table) for item in sc.send]


def test_routed_client_and_server_meet_only_through_the_router() -> None:
    t = load("routed")
    router, client, server = t.node("router"), t.node("client"), t.node("server")
    assert router.router and len(router.networks) == 2
    assert not set(client.networks) & set(server.networks)
    for end in (client, server):
        assert end.gateway is not None
        assert end.gateway == router.address_on(end.networks[0])
    programs = {t.service(sc.service).program for sc in t.scenarios}
    assert {"fork_server", "udp_echo"} <= programs
    for sc in t.scenarios:
        assert t.target_address(t.service(sc.service), "client") == server.interfaces[0].address


def test_scale_has_24_clients_each_with_concurrent_connections() -> None:
    t = load("scale")
    clients = [f"c{i:02d}" for i in range(1, 25)]
    assert [n.name for n in t.nodes if n.name != "server"] == clients
    assert {t.service(sc.service).program for sc in t.scenarios} == {"fork_server", "thread_server"}
    for sc in t.scenarios:
        assert list(sc.clients) == clients
        assert sc.concurrency >= 2 and sc.hold > 0
        assert sc.total_connections == 24 * sc.concurrency
