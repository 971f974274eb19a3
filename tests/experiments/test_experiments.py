"""The experiments: every file validates, every run passes every check on real network
namespaces, and every claim fails on evidence that contradicts it (a copied results folder
with a capture or snapshot changed, or another experiment's evidence where the claim must
not hold)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lab.errors import TopologyError
from lab.evidence.folder import Evidence
from lab.spec.model import Topology
from lab.spec.topology import load_topology, load_topology_text, validate_file
from lab.verdict import claims
from tests.experiments.conftest import EXPERIMENTS, NAMES, RUN_NAMES, Runs

# -- the files --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_experiment_file_validates(name: str) -> None:
    path = EXPERIMENTS / f"{name}.yaml"
    assert validate_file(path) == []
    # A spot-the-bug experiment may catch its bug with the built-in checks alone (the
    # thread table's crash: service-ran and replies); every other scenario makes a claim.
    assert all(sc.claims or name.startswith("bug-") for sc in load_topology(path).scenarios)


def test_every_claim_is_made_by_some_experiment() -> None:
    made = {
        c
        for n in NAMES
        for sc in load_topology(EXPERIMENTS / f"{n}.yaml").scenarios
        for c in sc.claims
    }
    assert made == set(claims.CLAIMS)


def test_experiment_subnets_are_distinct() -> None:
    topos = [load_topology(EXPERIMENTS / f"{n}.yaml") for n in NAMES]
    subnets = [net.subnet for t in topos for net in t.networks]
    assert len(subnets) == len(set(subnets))


_LAB = """
networks: {lan: {subnet: 10.77.199.0/24}}
nodes:
  s: {interfaces: {lan: 10.77.199.10}}
  c: {interfaces: {lan: 10.77.199.11}}
services:
  tcp: {node: s, program: fork_server}
  udp: {node: s, program: udp_echo}
scenarios:
  - {name: x, service: SERVICE, clients: [c], send: [a], expect: [A], claims: CLAIMS}
"""


def _problems(service: str, claim_list: str) -> list[str]:
    text = _LAB.replace("SERVICE", service).replace("CLAIMS", claim_list)
    with pytest.raises(TopologyError) as info:
        load_topology_text(text, "t.yaml")
    return info.value.problems


def test_unknown_claim_gets_a_suggestion() -> None:
    assert _problems("tcp", "[handshak]") == [
        "t.yaml:10: scenarios[0].claims[0]: unknown claim 'handshak' (did you mean 'handshake'?)"
    ]


def test_claim_listed_twice_is_refused() -> None:
    assert _problems("tcp", "[handshake, handshake]") == [
        "t.yaml:10: scenarios[0].claims[1]: claim 'handshake' is listed twice"
    ]


def test_tcp_claim_on_udp_service_is_refused() -> None:
    assert _problems("udp", "[handshake]") == [
        "t.yaml:10: scenarios[0].claims[0]: claim 'handshake' is about TCP; service 'udp' is not"
    ]


def test_claims_reach_the_model() -> None:
    text = _LAB.replace("SERVICE", "udp").replace("CLAIMS", "[no-handshake, no-time-wait]")
    topo = load_topology_text(text, "t.yaml")
    assert topo.scenarios[0].claims == ("no-handshake", "no-time-wait")


# -- the runs ---------------------------------------------------------------------------------


def needs_netem(topology: Topology, backend: str) -> bool:
    """Whether the kernel's netem qdisc is needed: for delay and the like everywhere, for
    any impairment on Docker (the netns backend alone drops and shapes without it)."""
    wanted = [i.netem for i in topology.impairments]
    wanted += [st.netem for sc in topology.scenarios for st in sc.impair]
    return any(n.netem_only() for n in wanted) or (backend == "docker" and bool(wanted))


def test_only_the_loss_experiment_runs_without_netem_on_netns() -> None:
    needy = {n for n in NAMES if needs_netem(load_topology(EXPERIMENTS / f"{n}.yaml"), "netns")}
    assert needy == {"rtt", "slow-start", "reorder"}


@pytest.mark.parametrize("name", RUN_NAMES)
def test_experiment_passes(backend_runs: Runs, name: str, request: pytest.FixtureRequest) -> None:
    """On every backend (the fixture's parameter, which also puts the test in its tier)."""
    _, status, summary, stderr = backend_runs[name]
    backend = request.node.callspec.params["backend_runs"]
    if needs_netem(load_topology(EXPERIMENTS / f"{name}.yaml"), backend):
        request.getfixturevalue("netem_kernel")
    assert summary is not None, stderr
    failed = [
        f"{sc['name']}: {c['name']}: {c['detail']}"
        for sc in summary["scenarios"]
        for c in sc["checks"]
        if not c["passed"]
    ]
    assert failed == [] and status == 0 and summary["passed"], stderr
    # Each claim the file makes was judged, under its own name, in the summary.
    folder = backend_runs[name][0]
    topo = load_topology(folder / "topology.yaml", sources=False)
    by_scenario = {sc["name"]: {c["name"] for c in sc["checks"]} for sc in summary["scenarios"]}
    for sc in topo.scenarios:
        judged = claims.claim_checks(topo, Evidence.load(folder), sc)
        assert len(judged) == len(sc.claims)
        assert {c.name for c in judged} <= by_scenario[sc.name]


def test_experiment_list_shows_every_experiment() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lab.cli", "experiment", "--list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    assert listed == NAMES
    assert {"window", "iterative"} <= set(listed)


def test_every_declared_claim_is_judged() -> None:
    from lab.spec.claims import CLAIM_SPECS

    assert list(CLAIM_SPECS) == list(claims.CLAIMS)
