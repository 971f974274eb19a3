"""netem on the netns backend: the qdiscs are where the docs say (a node's ingress on the
switch's end of its veth, its egress on its own end), change at run time, and nothing of
them is left after teardown or a failed ``up``. Inspected with ``tc`` from the outside."""

from __future__ import annotations

import json
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from lab.errors import BackendError
from lab.run.backends.base import new_run_id
from lab.run.backends.netns import NetnsBackend
from lab.run.backends.netns.names import SWITCH, ns_name, veth_name
from lab.spec.netem import Impairment, Netem
from tests.backends.contract_kit import lan
from tests.labcli import ROOT
from tests.leftovers import leftovers_of, netns_objects, signal_lab_run_at

pytestmark = pytest.mark.netns


def qdiscs(ns: str, dev: str) -> list[dict[str, object]]:
    argv = ["ip", "netns", "exec", ns, "tc", "-j", "qdisc", "show", "dev", dev]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return list(json.loads(out or "[]"))


def netem_of(ns: str, dev: str) -> dict[str, object] | None:
    found = [q for q in qdiscs(ns, dev) if q.get("kind") == "netem"]
    return found[0] if found else None


def root_netem_devices() -> list[str]:
    """Devices of the host's own namespace that carry a netem qdisc."""
    out = subprocess.run(["tc", "-j", "qdisc", "show"], capture_output=True, text=True).stdout
    return [str(q.get("dev")) for q in json.loads(out or "[]") if q.get("kind") == "netem"]


def test_qdiscs_placed_changed_cleared_and_gone_after_down(netem_kernel: None) -> None:
    topology = replace(
        lan("a", "b", subnet="10.20.31.0/24"),
        impairments=(
            Impairment("b", "lan", "ingress", Netem(delay_us=40_000, loss=5.0)),
            Impairment("a", "lan", "egress", Netem(rate_bit=1_000_000)),
        ),
    )
    run_id = new_run_id()
    backend = NetnsBackend(run_id)
    switch, a_ns = ns_name(run_id, SWITCH), ns_name(run_id, "a")
    # Attachments are numbered in node order: a's eth0 is v0, b's is v1.
    b_side = veth_name(run_id, 1)
    before = root_netem_devices()
    try:
        backend.up(topology)
        b_in = netem_of(switch, b_side)
        assert b_in is not None and b_in["options"]["delay"]["delay"] == pytest.approx(0.04)  # type: ignore[index]
        assert netem_of(switch, veth_name(run_id, 0)) is None  # a's ingress: untouched
        assert netem_of(a_ns, "eth0") is not None  # a's egress
        assert netem_of(ns_name(run_id, "b"), "eth0") is None
        backend.set_netem("a", "lan", "ingress", Netem(loss=10.0))
        assert netem_of(switch, veth_name(run_id, 0)) is not None
        backend.set_netem("b", "lan", "ingress", None)
        assert netem_of(switch, b_side) is None
        backend.set_netem("b", "lan", "ingress", None)  # clearing twice is fine
        with pytest.raises(Exception, match="no interface on network 'wan'"):
            backend.set_netem("b", "wan", "ingress", Netem(loss=1.0))
    finally:
        backend.down()
    assert netns_objects(run_id) == []
    assert root_netem_devices() == before


def test_a_failing_qdisc_stops_up_and_leaves_nothing(
    netem_kernel: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tc refuses this: up fails after the links exist.
    monkeypatch.setattr(Netem, "tc_args", lambda self: ["netem", "delay", "forever"])
    topology = replace(
        lan("a", "b", subnet="10.20.32.0/24"),
        impairments=(Impairment("b", "lan", "ingress", Netem(delay_us=1000)),),
    )
    run_id = new_run_id()
    backend = NetnsBackend(run_id)
    with pytest.raises(BackendError, match="tc qdisc replace"):
        try:
            backend.up(topology)
        finally:
            backend.down()
    assert netns_objects(run_id) == []


INTERRUPTED = """\
name: imp-int
networks:
  lan:
    subnet: 10.20.33.0/24
    netem: {delay: 30ms}
nodes:
  server: {interfaces: {lan: 10.20.33.10}}
  client: {interfaces: {lan: 10.20.33.11}}
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
      - {node: client, network: lan, direction: egress, start: 0, duration: 60, netem: {loss: 1%}}
"""


def test_ctrl_c_during_the_scenarios_leaves_no_qdisc(netem_kernel: None, tmp_path: Path) -> None:
    topo = tmp_path / "imp-int.yaml"
    topo.write_text(INTERRUPTED)
    out = tmp_path / "results"
    before = root_netem_devices()
    proc, _ = signal_lab_run_at(topo, out, "scenarios", signal.SIGINT, ROOT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert leftovers_of(out) == []
    assert root_netem_devices() == before
