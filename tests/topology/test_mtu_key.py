"""The per-network ``mtu`` key: validated with located errors, carried to the model, and
refused by the ssh backend (it would change real machines' interfaces)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import TopologyError
from lab.spec.topology import load_topology_text
from tests.labcli import lab

_LAB = """\
networks:
  lan: {subnet: 10.77.198.0/24, mtu: MTU}
nodes:
  s: {interfaces: {lan: 10.77.198.10}SSH_S}
  c: {interfaces: {lan: 10.77.198.11}SSH_C}
services:
  echo: {node: s, program: fork_server}
"""


def _text(mtu: str, ssh: bool = False) -> str:
    text = _LAB.replace("MTU", mtu)
    text = text.replace("SSH_S", ", ssh: {host: 192.0.2.10}" if ssh else "")
    return text.replace("SSH_C", ", ssh: {host: 192.0.2.11}" if ssh else "")


def test_mtu_reaches_the_model() -> None:
    topo = load_topology_text(_text("1000"), "t.yaml")
    assert topo.network("lan").mtu == 1000


@pytest.mark.parametrize(
    ("mtu", "problem"),
    [
        ("100", "t.yaml:2: networks.lan.mtu: 100 is out of range 576..9000"),
        ("9001", "t.yaml:2: networks.lan.mtu: 9001 is out of range 576..9000"),
        ("big", "t.yaml:2: networks.lan.mtu: must be an integer, got a string"),
    ],
)
def test_bad_mtu_is_located(mtu: str, problem: str) -> None:
    with pytest.raises(TopologyError) as info:
        load_topology_text(_text(mtu), "t.yaml")
    assert info.value.problems == [problem]


def test_ssh_refuses_mtu_before_connecting(tmp_path: Path) -> None:
    topo = tmp_path / "ssh-mtu.yaml"
    topo.write_text(_text("1000", ssh=True))
    done = lab("run", str(topo), "--backend", "ssh", "--out", str(tmp_path / "r"), timeout=60)
    assert done.returncode == 2, done.stderr
    assert "a network `mtu` is not supported by the ssh backend" in done.stderr
    assert "`mtu` on lan" in done.stderr
