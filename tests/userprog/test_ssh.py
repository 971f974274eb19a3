"""Students' programs over the ssh backend, against real OpenSSH servers in namespaces:
uploaded to and built on each host that runs them, with the host's own compiler."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.spec.topology import load_topology
from tests.labcli import lab
from tests.ssh.hosts import World, run_dirs, run_processes, worlds
from tests.ssh.test_ssh import ssh_topology
from tests.userprog.topo import student_dir

__all__ = ["worlds"]  # the fixture, used by name

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

Worlds = Callable[..., World]

TOPOLOGY = """\
name: student-ssh
networks:
  lan: {{subnet: 10.77.1.0/24}}
nodes:
  server:
    interfaces: {{lan: 10.77.1.10}}
  client1:
    interfaces: {{lan: 10.77.1.11}}
programs:
  my-fork:
    sources: [{sources}]
    model: fork
{build}  my-cli:
    sources: [student/client.c, student/wrap.c, student/wrap.h]
services:
  fork: {{node: server, program: my-fork, port: 9999}}
scenarios:
  - {{name: echo, service: fork, clients: [client1], client_program: my-cli,
     send: [hello], expect: [HELLO], hold: 6}}
"""


FORK = "student/server.c, student/wrap.c, student/wrap.h"


def lab_run(
    worlds: Worlds, tmp_path: Path, build: str = "", sources: str = FORK
) -> tuple[int, str, Path]:
    student_dir(tmp_path)
    source = tmp_path / "source.yaml"
    source.write_text(TOPOLOGY.format(build=build, sources=sources))
    world = worlds(load_topology(source))
    topo = ssh_topology(world, source, tmp_path / "t.yaml")
    known = world.known_hosts(tmp_path / "kh")
    out = tmp_path / "out"
    proc = lab("run", str(topo), "--backend", "ssh", "--known-hosts", str(known), "--out", str(out))
    return proc.returncode, proc.stderr, out


def assert_nothing_left(out: Path) -> None:
    run_id = json.loads((out / "run.json").read_text())["run_id"]
    assert run_processes(run_id) == []
    assert run_dirs(run_id) == []


def test_c_server_and_client_built_on_each_host(worlds: Worlds, tmp_path: Path) -> None:
    code, stderr, out = lab_run(worlds, tmp_path)
    assert code == 0, stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    names = {c["name"] for s in summary["scenarios"] for c in s["checks"]}
    assert {"replies", "one child per connection", "children reaped", "captured"} <= names
    assert (out / "programs" / "my-fork" / "my-fork").is_file()
    assert "[server] $ cc" in (out / "programs" / "my-fork" / "build.log").read_text()
    assert "[client1] $ cc" in (out / "programs" / "my-cli" / "build.log").read_text()
    assert_nothing_left(out)


def test_preflight_names_a_missing_compiler(worlds: Worlds, tmp_path: Path) -> None:
    build = "    build: [no-such-cc, -o, my-fork, server.c, wrap.c]\n"
    code, stderr, out = lab_run(worlds, tmp_path, build)
    assert code != 0
    assert "1 host cannot run the lab; nothing was started" in stderr
    assert "node server" in stderr and "missing no-such-cc: apt-get install no-such-cc" in stderr
    assert "node client1" not in stderr  # it runs only my-cli, built with cc
    assert_nothing_left(out)


def test_compile_error_on_a_host(worlds: Worlds, tmp_path: Path) -> None:
    code, stderr, out = lab_run(worlds, tmp_path, sources="student/broken.c")
    assert code == 2, stderr[-2000:]
    assert "program my-fork: build on server failed (exit status 1)" in stderr
    assert "student/broken.c:4:34: error: expected" in stderr
    assert not (out / "programs" / "my-fork" / "my-fork").exists()
    assert_nothing_left(out)
