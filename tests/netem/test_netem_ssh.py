"""The ssh backend refuses netem: it would change a real machine's interfaces. Refused
before anything is contacted or created, exit 2."""

from __future__ import annotations

from pathlib import Path

from tests.labcli import lab

SSH_TOPOLOGY = """\
name: ssh-netem
networks:
  lan:
    subnet: 10.77.50.0/24
    netem: {delay: 10ms}
nodes:
  server:
    interfaces: {lan: 10.77.50.10}
    ssh: {host: 192.0.2.10}
  client:
    interfaces: {lan: 10.77.50.11}
    ssh: {host: 192.0.2.11}
"""


def test_ssh_refuses_netem_before_connecting(tmp_path: Path) -> None:
    topo = tmp_path / "ssh-netem.yaml"
    topo.write_text(SSH_TOPOLOGY)
    out = tmp_path / "results"
    done = lab("run", str(topo), "--backend", "ssh", "--out", str(out), timeout=60)
    assert done.returncode == 2, done.stderr
    assert "netem is not supported by the ssh backend" in done.stderr
    assert "client, server" in done.stderr
    assert not out.exists()
