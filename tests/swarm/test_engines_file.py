"""The --engines file, the `engine:` node key and the spread of nodes: bad input is refused
with its file and line before anything is made; placement keeps a scenario's server and
clients apart. Pure logic and the CLI's refusals: no engine is needed."""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest

from lab.errors import UsageError
from lab.run.backends.swarm import SwarmBackend, load_engines
from lab.run.backends.swarm.cluster import refusal
from lab.run.backends.swarm.enginesfile import EngineSpec
from lab.run.backends.swarm.placement import place
from lab.spec.model import Interface, Network, Node, Scenario, Service, Topology
from tests.labcli import ROOT, lab


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "engines.yaml"
    path.write_text(text)
    return path


def test_a_good_file_keeps_order_urls_and_tls(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    path = write(
        tmp_path,
        "vm: unix:///var/run/docker.sock\n"
        "node-2:\n  url: tcp://10.0.0.2:2376\n  tls: {ca: ca.pem, cert: cert.pem, key: key.pem}\n"
        "abcdef123456: ssh://root@10.0.0.3\n",
    )
    file = load_engines(path)
    assert file.names() == ("vm", "node-2", "abcdef123456")
    assert [e.line for e in file.engines] == [1, 2, 5]
    tls = file.engines[1].tls
    assert tls is not None and tls.ca == (tmp_path / "ca.pem").resolve()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("vm: unix:///a\nw: [unix:///x\n", 3, "not valid YAML"),
        ("- vm\n", 1, "a mapping"),
        ("vm: unix:///a\nw: http://x\n", 2, "bad URL 'http://x'"),
        ("vm: unix:///a\nw: tcp://10.0.0.2:2375\n", 2, "needs `tls"),
        ("vm: unix:///a\nvm: unix:///b\n", 2, "given twice (first on line 1)"),
        ("vm:\n  url: unix:///a\n  colour: red\n", 2, "unknown key 'colour'"),
        ("vm:\n  tls: {}\n", 2, "needs a url"),
        ("-vm: unix:///a\n", 1, "bad engine name"),
        ("vm:\n  url: unix:///a\n  tls: {ca: nope.pem}\n", 3, "tls applies to tcp://"),
        ("w:\n  url: tcp://h:2376\n  tls: {ca: nope.pem}\n", 3, "no such file"),
    ],
)
def test_bad_files_are_refused_with_their_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as info:
        load_engines(path)
    assert str(info.value).startswith(f"{path}:{line}: "), info.value
    assert words in str(info.value)


def test_the_cli_refuses_a_bad_engines_file_and_engines_without_swarm(tmp_path: Path) -> None:
    path = write(tmp_path, "vm: ftp://x\n")
    topo = str(ROOT / "topologies" / "default.yaml")
    done = lab("run", topo, "--backend", "swarm", "--engines", str(path))
    assert done.returncode == 2, done.stderr
    assert f"{path}:1: vm: bad URL" in done.stderr
    done = lab("run", topo, "--backend", "netns", "--engines", str(path))
    assert done.returncode == 2, done.stderr
    assert "--engines applies to --backend swarm" in done.stderr


def test_a_bad_engine_key_is_located_in_the_topology(tmp_path: Path) -> None:
    topo = tmp_path / "t.yaml"
    topo.write_text(
        "networks: {lan: {subnet: 10.1.0.0/24}}\n"
        "nodes:\n"
        "  a: {interfaces: {lan: 10.1.0.5}}\n"
        "  b:\n    interfaces: {lan: 10.1.0.6}\n    engine: '-x y'\n"
    )
    done = lab("validate", str(topo))
    assert done.returncode == 2
    assert f"{topo}:6: nodes.b.engine: bad engine '-x y'" in done.stderr


def test_a_node_on_an_engine_the_file_lacks_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "vm: unix:///var/run/docker.sock\n")
    cls = SwarmBackend.configured(load_engines(path))
    topo = lan_with_service(("srv", "vm"), ("cli", "elsewhere"))
    assert cls.topology_problems(topo) == [
        "node cli: engine 'elsewhere' is not in the engines file (engines: vm)"
    ]


def lan_with_service(*nodes: tuple[str, str | None]) -> Topology:
    net = IPv4Network("10.20.0.0/24")
    made = tuple(
        Node(name, (Interface("lan", net[10 + k]),), engine=engine)
        for k, (name, engine) in enumerate(nodes)
    )
    server, *clients = (n.name for n in made)
    return Topology(
        "lan",
        (Network("lan", net),),
        made,
        services=(Service("echo", server, "fork_server", 9999),),
        scenarios=(Scenario("s", "echo", tuple(clients), ("hi",), ("HI",)),),
    )


def test_spread_keeps_server_and_clients_apart() -> None:
    topo = lan_with_service(("srv", None), ("c1", None), ("c2", None), ("c3", None))
    where = place(topo, ["a", "b"], {})
    assert where["srv"] == "a"
    assert {where[c] for c in ("c1", "c2", "c3")} == {"b"}
    three = place(topo, ["a", "b", "c"], {})
    assert all(three[c] != three["srv"] for c in ("c1", "c2", "c3"))
    assert {three[c] for c in ("c1", "c2", "c3")} == {"b", "c"}
    assert set(place(topo, ["only"], {}).values()) == {"only"}


def test_a_node_engine_is_kept_and_the_rest_spread_around_it() -> None:
    topo = lan_with_service(("srv", "b"), ("c1", None), ("c2", "b"))
    where = place(topo, ["a", "b"], {"srv": "b", "c2": "b"})
    assert where == {"srv": "b", "c1": "a", "c2": "b"}


def test_a_router_between_server_and_client_is_balanced() -> None:
    a, r = IPv4Network("10.1.0.0/24"), IPv4Network("10.2.0.0/24")
    nodes = (
        Node("cli", (Interface("a", a[10]),)),
        Node("r", (Interface("a", a[1]), Interface("b", r[1])), router=True),
        Node("srv", (Interface("b", r[10]),)),
    )
    topo = Topology(
        "routed",
        (Network("a", a), Network("b", r)),
        nodes,
        services=(Service("echo", "srv", "fork_server", 9999),),
        scenarios=(Scenario("s", "echo", ("cli",), ("x",), ("X",)),),
    )
    where = place(topo, ["m", "w"], {})
    assert where["srv"] != where["cli"]
    assert set(where.values()) == {"m", "w"}


def info(
    state: str, name: str = "vm", node_id: str = "b59k67f0t15v8pc1gis39rc3f"
) -> dict[str, Any]:
    """The fields of an engine's /info that the refusals read, as the engine reports them."""
    return {"Name": name, "Swarm": {"LocalNodeState": state, "NodeID": node_id}}


def test_an_engine_out_of_swarm_mode_or_named_for_another_node_is_refused() -> None:
    spec = EngineSpec("vm", "unix:///var/run/docker.sock")
    said = refusal(spec, info("inactive", node_id=""))
    assert said is not None
    assert said.startswith("engine vm (unix:///var/run/docker.sock) is not in swarm mode")
    assert "never makes one" in said
    assert refusal(spec, info("active")) is None
    # By ID, or a prefix of 12 characters or more; a shorter prefix is not enough.
    assert refusal(EngineSpec("b59k67f0t15v8pc1gis39rc3f", "unix:///x"), info("active")) is None
    assert refusal(EngineSpec("b59k67f0t15v", "unix:///x"), info("active")) is None
    short = refusal(EngineSpec("b59k67", "unix:///x"), info("active"))
    assert short is not None and "reaches swarm node vm" in short
    other = refusal(EngineSpec("node-2", "unix:///x"), info("active"))
    assert other == (
        "engine node-2 (unix:///x): that URL reaches swarm node vm "
        "(ID b59k67f0t15v8pc1gis39rc3f), not node-2"
    )
