"""A service's ``bind`` address: it reaches the server's command line, and a user program
(which binds what its own ``run`` says) may not have one."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import TopologyError
from lab.spec.topology import load_topology, load_topology_text

_LAB = """
networks: {near: {subnet: 10.77.1.0/24}, far: {subnet: 10.77.2.0/24}}
nodes:
  s: {interfaces: {near: 10.77.1.10, far: 10.77.2.10}}
  c: {interfaces: {far: 10.77.2.11}}
SERVICES
scenarios:
  - {name: x, service: svc, clients: [c], probe: refused}
"""


def test_bind_reaches_the_servers_command_line_and_defaults_to_every_address() -> None:
    one = _LAB.replace(
        "SERVICES", "services: {svc: {node: s, program: fork_server, bind: 10.77.1.10}}"
    )
    svc = load_topology_text(one, "t.yaml").service("svc")
    assert svc.bind == "10.77.1.10"
    assert svc.args()[:2] == ["--host", "10.77.1.10"]
    plain = "services: {svc: {node: s, program: thread_server}}"
    text = _LAB.replace("SERVICES", plain).replace(", probe: refused", ", send: [a], expect: [A]")
    assert load_topology_text(text, "t.yaml").service("svc").args()[:2] == ["--host", "0.0.0.0"]


def test_a_refused_probe_without_port_needs_a_bound_service() -> None:
    text = _LAB.replace("SERVICES", "services: {svc: {node: s, program: fork_server}}")
    with pytest.raises(TopologyError) as info:
        load_topology_text(text, "t.yaml")
    assert info.value.problems == [
        "t.yaml:8: scenarios[0]: the refused probe needs a 'port' nothing listens on"
    ]


def test_a_user_program_takes_no_bind(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("print('hi')\n")
    text = _LAB.replace(
        "SERVICES",
        "programs: {mine: {sources: [mine.py], run: [python3, mine.py, '{port}']}}\n"
        "services: {svc: {node: s, program: mine, port: 9000, bind: 10.77.1.10}}",
    ).replace(", probe: refused", ", send: [a], expect: [A]")
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    assert [p.split(": ", 1)[1] for p in info.value.problems] == [
        "services.svc.bind: a user program binds what its `run` says; bind is for lab programs"
    ]
