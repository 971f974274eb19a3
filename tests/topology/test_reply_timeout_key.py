"""The scenario key ``reply_timeout``: validated with located errors, and the seconds each
client of the scenario waits for its reply, in ``lab run`` and in a compose file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.deploy.compose import client_argv
from lab.errors import TopologyError
from lab.spec.topology import load_topology_text
from tests.labcli import lab

# The iterative server serves one connection at a time: "waiter" connects while "holder"
# holds the only one, so its reply comes about 3 s after its request.
_LAB = """\
networks:
  lan: {subnet: 10.77.197.0/24}
nodes:
  s: {interfaces: {lan: 10.77.197.10}}
  c: {interfaces: {lan: 10.77.197.11}}
  d: {interfaces: {lan: 10.77.197.12}}
services:
  one: {node: s, program: iterative_server}
scenarios:
  - {name: holder, service: one, clients: [c], send: [a], expect: [A], hold: 4}
  - {name: waiter, service: one, clients: [d], send: [b], expect: [B], start_after: 1REPLY}
"""


def _text(reply: str | None) -> str:
    return _LAB.replace("REPLY", f", reply_timeout: {reply}" if reply is not None else "")


def _timeout(argv: list[str]) -> str:
    return argv[argv.index("--timeout") + 1]


def test_reply_timeout_defaults_to_ten_seconds_and_reaches_the_compose_client() -> None:
    topo = load_topology_text(_text(None), "t.yaml")
    assert topo.scenarios[1].reply_timeout == 10.0
    assert _timeout(client_argv(topo, topo.scenarios[1], "d")) == "10"
    topo = load_topology_text(_text("2.5"), "t.yaml")
    assert topo.scenarios[1].reply_timeout == 2.5
    assert _timeout(client_argv(topo, topo.scenarios[1], "d")) == "2.5"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "t.yaml:11: scenarios[1].reply_timeout: 0 is out of range 1..600"),
        ("soon", "t.yaml:11: scenarios[1].reply_timeout: must be a number, got a string"),
    ],
)
def test_bad_reply_timeout_is_located(value: str, problem: str) -> None:
    with pytest.raises(TopologyError) as info:
        load_topology_text(_text(value), "t.yaml")
    assert info.value.problems == [problem]


def _run(tmp_path: Path, reply: str | None) -> tuple[int, dict[str, str], str]:
    """``lab run`` on netns: exit status, each check of "waiter" with its detail."""
    topo = tmp_path / f"reply-{reply or 'default'}.yaml"
    topo.write_text(_text(reply))
    out = tmp_path / f"out-{reply or 'default'}"
    done = lab("run", str(topo), "--backend", "netns", "--out", str(out), "--json", timeout=120)
    summary = json.loads(done.stdout)
    (waiter,) = [s for s in summary["scenarios"] if s["name"] == "waiter"]
    return done.returncode, {c["name"]: c["detail"] for c in waiter["checks"]}, done.stderr


@pytest.mark.netns
def test_lab_run_clients_wait_as_long_as_the_scenario_says(root: None, tmp_path: Path) -> None:
    status, checks, stderr = _run(tmp_path, None)
    assert status == 0, (checks, stderr[-2000:])
    status, checks, stderr = _run(tmp_path, "1")
    assert status != 0, checks
    assert "no reply within 1 s" in checks["replies"], checks
