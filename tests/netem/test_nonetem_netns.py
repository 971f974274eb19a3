"""Impairments on a kernel without netem, on the netns backend: loss dropped by nftables on
the switch's side of the link, rate limited by tbf, both changed and cleared at run time,
both gone with the run's namespaces; what only netem can do refused before anything is
made. The kernel is taken to lack netem whether or not it does, so this runs anywhere."""

from __future__ import annotations

import json
import signal
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lab.errors import UsageError
from lab.run.backends import kernel
from lab.run.backends.base import new_run_id
from lab.run.backends.netns import NetnsBackend
from lab.run.backends.netns.names import SWITCH, ns_name, veth_name
from lab.run.backends.netns.nonetem import SCALE, TABLE
from lab.spec.model import Scenario
from lab.spec.netem import NO_NETEM_KERNEL, Impairment, ImpairStep, Netem
from tests.backends.contract_kit import lan
from tests.labcli import ROOT
from tests.leftovers import leftovers_of, netns_objects, signal_lab_run_at


@pytest.fixture
def no_netem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel, "kernel_has_netem", lambda: False)


def loss_rules(switch: str) -> dict[str, list[list[dict[str, Any]]]]:
    """chain -> its rules (each the list of its expressions), in the run's loss table."""
    argv = ["ip", "netns", "exec", switch, "nft", "-j", "list", "table", "bridge", TABLE]
    out = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    chains: dict[str, list[list[dict[str, Any]]]] = {}
    for item in out["nftables"]:
        if "chain" in item:
            chains.setdefault(item["chain"]["name"], [])
        if "rule" in item:
            chains[item["rule"]["chain"]].append(item["rule"]["expr"])
    return chains


def drop_threshold(rule: list[dict[str, Any]]) -> tuple[str, int]:
    """(port match, numgen bound) of one drop rule; the bound is SCALE when it drops all."""
    matches = [e["match"] for e in rule if "match" in e]
    assert {"drop": None} in rule
    port = next(m["left"]["meta"]["key"] for m in matches if "meta" in m["left"])
    bound = next((m["right"] for m in matches if "numgen" in m["left"]), SCALE)
    return port, int(bound)


def qdisc_kinds(ns: str, dev: str) -> list[str]:
    argv = ["ip", "netns", "exec", ns, "tc", "-j", "qdisc", "show", "dev", dev]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [str(q.get("kind")) for q in json.loads(out or "[]")]


def host_state() -> tuple[str, list[str]]:
    """The host namespace's nftables tables and its shaping qdiscs (not every link's
    default one: other people's containers come and go), which the lab must not touch."""
    nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    out = subprocess.run(["tc", "-j", "qdisc", "show"], capture_output=True, text=True).stdout
    shaping = [f"{q.get('dev')} {q.get('kind')}" for q in json.loads(out or "[]")]
    return nft, sorted(q for q in shaping if q.endswith((" tbf", " netem")))


REACH = """
import socket, sys
s = socket.socket()
s.settimeout(5)
try:
    s.connect((sys.argv[1], 9))
except ConnectionRefusedError:
    sys.exit(0)  # the peer's RST came back: the SYN got there
except OSError:
    sys.exit(1)
"""


def reaches(backend: NetnsBackend, node: str, address: str) -> bool:
    """Whether a SYN from ``node`` to a closed port of ``address`` is answered."""
    done = backend.run(node, [backend.python, "-c", REACH, address], timeout=30)
    return done.ok


def test_loss_and_rate_without_netem_placed_changed_cleared_and_gone(
    root: None, no_netem: None
) -> None:
    topology = replace(
        lan("a", "b", subnet="10.20.34.0/24"),
        impairments=(
            Impairment("b", "lan", "ingress", Netem(loss=100.0, rate_bit=2_000_000)),
            Impairment("a", "lan", "egress", Netem(loss=12.5)),
        ),
    )
    run_id = new_run_id()
    backend = NetnsBackend(run_id)
    switch = ns_name(run_id, SWITCH)
    a_side, b_side = veth_name(run_id, 0), veth_name(run_id, 1)
    before = host_state()
    try:
        backend.up(topology)
        rules = loss_rules(switch)
        assert [drop_threshold(r) for r in rules[f"in_{b_side}"]] == [("oifname", 1_000_000)]
        assert [drop_threshold(r) for r in rules[f"out_{a_side}"]] == [("iifname", 125_000)]
        assert qdisc_kinds(switch, b_side)[0] == "tbf"
        assert "tbf" not in qdisc_kinds(ns_name(run_id, "a"), "eth0")
        # Everything b receives is lost on the wire; a's own sends are not refused locally.
        assert not reaches(backend, "a", "10.20.34.11")
        backend.set_netem("b", "lan", "ingress", Netem(loss=5.0))
        assert [drop_threshold(r) for r in loss_rules(switch)[f"in_{b_side}"]] == [
            ("oifname", 50_000)
        ]
        assert "tbf" not in qdisc_kinds(switch, b_side)
        with pytest.raises(UsageError, match=r"CONFIG_NET_SCH_NETEM\): delay, reorder"):
            backend.set_netem("b", "lan", "ingress", Netem(delay_us=1000, reorder=5.0))
        assert len(loss_rules(switch)[f"in_{b_side}"]) == 1  # refused before any change
        backend.set_netem("b", "lan", "ingress", None)
        backend.set_netem("a", "lan", "egress", None)
        backend.set_netem("a", "lan", "egress", None)  # clearing twice is fine
        assert all(chain == [] for chain in loss_rules(switch).values())
        backend.set_netem("a", "lan", "egress", Netem(rate_bit=1_000_000))
        assert qdisc_kinds(ns_name(run_id, "a"), "eth0")[0] == "tbf"
        backend.set_netem("a", "lan", "egress", None)
        assert reaches(backend, "a", "10.20.34.11")
    finally:
        backend.down()
    # The rules and qdiscs lived in the run's namespaces and went with them.
    assert netns_objects(run_id) == []
    assert host_state() == before


def test_what_only_netem_makes_is_refused_before_anything_is_made(no_netem: None) -> None:
    step = ImpairStep("a", "lan", "egress", 1.0, 2.0, Netem(loss=1.0, duplicate=2.0))
    topology = replace(
        lan("a", "b", subnet="10.20.35.0/24"),
        impairments=(
            Impairment("b", "lan", "ingress", Netem(delay_us=40_000, jitter_us=5000)),
            Impairment("a", "lan", "ingress", Netem(loss=5.0, rate_bit=1_000_000)),
        ),
        scenarios=(Scenario("s", "svc", ("a",), (), (), impair=(step,)),),
    )
    (problem,) = NetnsBackend.topology_problems(topology)
    assert problem.startswith(NO_NETEM_KERNEL)
    assert (
        "delay, duplicate, jitter (b's lan ingress, a's lan egress (impair step of s))" in problem
    )
    assert "a's lan ingress" not in problem  # loss and rate: made without netem
    assert "\n" not in problem
    loss_only = replace(topology, impairments=topology.impairments[1:], scenarios=())
    assert NetnsBackend.topology_problems(loss_only) == []
    assert NetnsBackend.impairment_note(loss_only) is not None


LOSSY_HELD = """\
name: loss-int
networks:
  lan:
    subnet: 10.20.38.0/24
    netem: {loss: 1%, rate: 10mbit}
nodes:
  server: {interfaces: {lan: 10.20.38.10}}
  client: {interfaces: {lan: 10.20.38.11}}
services:
  echo: {node: server, program: fork_server}
scenarios:
  - name: held
    service: echo
    clients: [client]
    send: [a]
    expect: [A]
    hold: 30
    impair:
      - {node: client, network: lan, direction: egress, start: 0, duration: 60, netem: {loss: 2%}}
"""


def test_ctrl_c_leaves_no_loss_rule_or_qdisc(root: None, tmp_path: Path) -> None:
    # Loss and rate only: netem where the kernel has it, nftables and tbf where it has not.
    topo = tmp_path / "loss-int.yaml"
    topo.write_text(LOSSY_HELD)
    out = tmp_path / "results"
    before = host_state()
    proc, _ = signal_lab_run_at(topo, out, "scenarios", signal.SIGINT, ROOT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert leftovers_of(out) == []
    assert host_state() == before
