"""Students' programs on the Docker backend: built inside the lab's node image (which has
the compilers) in each container that runs them, judged on the same evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.labcli import lab
from tests.leftovers import docker_objects
from tests.userprog.topo import write

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BODY = """\
programs:
  my-fork:
    sources: [{sources}]
    model: fork
  my-cli:
    sources: [student/client.c, student/wrap.c, student/wrap.h]
  my-thread:
    sources: [student/thread_server.cpp]
    model: thread
services:
  fork: {{node: server, program: my-fork, port: 9999}}
  thread: {{node: server, program: my-thread, port: 8000}}
scenarios:
  - {{name: own-client, service: fork, clients: [c1, c2], client_program: my-cli,
     send: [hello], expect: [HELLO], hold: 2}}
  - {{name: threads, service: thread, clients: [c1], send: [abc], expect: [ABC],
     concurrency: 3, hold: 2}}
"""
FORK = "student/server.c, student/wrap.c, student/wrap.h"


def run(tmp_path: Path, sources: str = FORK) -> tuple[int, str, Path]:
    path = write(tmp_path, BODY.format(sources=sources), name="student-docker", net=41)
    out = tmp_path / "out"
    proc = lab("run", str(path), "--backend", "docker", "--out", str(out), timeout=600)
    return proc.returncode, proc.stderr, out


def test_c_and_cxx_programs_built_in_the_node_image(docker_engine: None, tmp_path: Path) -> None:
    code, stderr, out = run(tmp_path)
    assert code == 0, stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "docker"
    names = {(s["name"], c["name"]) for s in summary["scenarios"] for c in s["checks"]}
    assert {
        ("own-client", "replies"),
        ("own-client", "one child per connection"),
        ("own-client", "children reaped"),
        ("threads", "one process, a thread per connection"),
    } <= names
    assert (out / "programs" / "my-fork" / "my-fork").is_file()
    assert "[server] $ c++" in (out / "programs" / "my-thread" / "build.log").read_text()
    assert docker_objects(summary["run_id"]) == []


def test_compile_error_inside_the_image(docker_engine: None, tmp_path: Path) -> None:
    code, stderr, out = run(tmp_path, sources="student/broken.c")
    assert code == 2, stderr[-2000:]
    assert "program my-fork: build on server failed (exit status 1)" in stderr
    assert "student/broken.c:4:34: error: expected" in stderr
    run_id = json.loads((out / "run.json").read_text())["run_id"]
    assert docker_objects(run_id) == []
