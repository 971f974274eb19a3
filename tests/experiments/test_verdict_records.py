"""The verdict reads the clients' reports from the typed run record: which client ports
are a scenario's, and what the built-in reply and probe checks say of a client that left
no result. Fast: records made in memory, no network."""

from __future__ import annotations

from pathlib import Path

from lab.evidence.folder import Evidence
from lab.run.record import (
    ClientRecord,
    ClientResult,
    ConnectionOutcome,
    ProbeConnection,
    ProbeResult,
    RunRecord,
    ScenarioRecord,
)
from lab.spec.model import Scenario, Topology
from lab.spec.topology import load_topology_text
from lab.verdict.checks import check_replies
from lab.verdict.errors import check_probes
from lab.verdict.scope import client_ports

_LAB = """
networks: {lan: {subnet: 10.77.198.0/24}}
nodes:
  s: {interfaces: {lan: 10.77.198.10}}
  c: {interfaces: {lan: 10.77.198.11}}
  d: {interfaces: {lan: 10.77.198.12}}
services:
  tcp: {node: s, program: iterative_server}
scenarios:
  - {name: lines, service: tcp, clients: [c, d], send: [a], expect: [A]}
  - {name: refused, service: tcp, clients: [c], probe: refused, port: 9998,
     expect_error: ECONNREFUSED}
"""


def _topo() -> Topology:
    return load_topology_text(_LAB, "t.yaml")


def _scenario(name: str) -> Scenario:
    return next(sc for sc in _topo().scenarios if sc.name == name)


def _line(local: str | None, replies: list[str]) -> ClientRecord:
    conn = ConnectionOutcome(0, local, ["a"], replies, None, False)
    result = ClientResult("client", "10.77.198.10:7", [conn], 1, 0)
    return ClientRecord(0, result, "", None)


def _probe(local: str, error: str | None, completed: bool = True) -> ClientRecord:
    conn = ProbeConnection(0, local, "10.77.198.10:9998", error, [], completed)
    result = ProbeResult("probe", "refused", "10.77.198.10:9998", [conn], error, completed)
    return ClientRecord(1, result, "", None)


def _evidence(tmp_path: Path, **scenarios: dict[str, ClientRecord]) -> Evidence:
    record = RunRecord("r", "t.yaml", "netns", "now", str(tmp_path))
    record.scenarios = {n: ScenarioRecord("tcp", clients) for n, clients in scenarios.items()}
    return Evidence(tmp_path, record)


def test_client_ports_are_the_scenarios_own_from_line_clients_and_probes(
    tmp_path: Path,
) -> None:
    ev = _evidence(
        tmp_path,
        lines={"c": _line("10.77.198.11:40001", ["A"]), "d": _line(None, [])},
        refused={"c": _probe("10.77.198.11:40002", "ECONNREFUSED")},
    )
    assert client_ports(ev, _scenario("lines")) == {40001}
    assert client_ports(ev, _scenario("refused")) == {40002}


def test_replies_name_why_a_client_has_no_result(tmp_path: Path) -> None:
    crashed = ClientRecord(1, None, "Traceback\nConnectionRefusedError: no\n", None)
    ev = _evidence(tmp_path, lines={"c": crashed, "d": _line("10.77.198.12:1", ["B"])})
    check = check_replies(ev, _scenario("lines"))
    assert not check.passed
    assert check.detail == (
        "0/2 connections got 'A'; c: no client result (ConnectionRefusedError: no); d #0: got 'B'"
    )
    ev = _evidence(tmp_path, lines={"d": ClientRecord(None, None, "x", "timed out")})
    assert "c: no client result (did not run); d: no client result (timed out)" in (
        check_replies(ev, _scenario("lines")).detail
    )


def test_probes_need_the_expected_error_and_a_completed_sequence(tmp_path: Path) -> None:
    sc = _scenario("refused")
    ev = _evidence(tmp_path, refused={"c": _probe("10.77.198.11:1", "ECONNREFUSED")})
    assert check_probes(ev, sc).passed
    ev = _evidence(tmp_path, refused={"c": _probe("10.77.198.11:1", "ECONNREFUSED", False)})
    check = check_probes(ev, sc)
    assert not check.passed
    assert check.detail.endswith("c: ECONNREFUSED (sequence not completed)")
    ev = _evidence(tmp_path, refused={"c": _line("10.77.198.11:1", ["A"])})
    assert check_probes(ev, sc).detail.endswith("c: no error (sequence not completed)")
