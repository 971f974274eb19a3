"""The ``programs`` section: defaults per language, placeholders, and every problem of a
file at once, each located (no root, no compiler needed)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from lab.errors import TopologyError
from lab.run.userbuild import as_written
from lab.spec.topology import load_topology
from tests.labcli import lab
from tests.userprog.topo import write

GOOD = """\
programs:
  my-fork:
    sources: [student/server.c, student/wrap.c, student/wrap.h]
    model: fork
  my-thread:
    sources: [student/thread_server.cpp, student/wrap.c]
    model: thread
  my-py:
    sources: [student/echo_server.py]
  tool:
    sources: [student/tool.sh]
  given:
    sources: [student]
    build: [make, -C, student]
    run: [./student/srv, "--port={port}", "{host}"]
    protocol: udp
services:
  fork: {node: server, program: my-fork, port: 9999}
  thread: {node: server, program: my-thread, port: 8000}
  py: {node: server, program: my-py, port: 9877}
  udp: {node: server, program: given, port: 9999}
scenarios:
  - {name: a, service: fork, clients: [c1], client_program: tool, send: [x], expect: [X]}
"""


def test_defaults_per_language(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    tool = tmp_path / "student" / "tool.sh"
    tool.write_text("#!/bin/sh\ncat\n")
    tool.chmod(0o755)
    topo = load_topology(path)
    fork, thread, py = topo.program("my-fork"), topo.program("my-thread"), topo.program("my-py")
    flags = ["-Wall", "-Wextra", "-O2", "-pthread"]
    assert list(fork.build) == ["cc", *flags, "-o", "my-fork", "server.c", "wrap.c"]
    assert fork.argv("10.0.0.1", 9999, client=False) == ["./my-fork", "9999"]
    assert fork.sources[0] == tmp_path / "student" / "server.c"
    assert fork.written[0] == "student/server.c"
    assert fork.model == "fork" and fork.protocol == "tcp"
    # Any C++ source makes it a C++ program; C files are compiled with it.
    assert list(thread.build) == ["c++", *flags, "-o", "my-thread", "thread_server.cpp", "wrap.c"]
    assert py.build == () and py.argv("h", 1, client=False) == ["python3", "echo_server.py", "1"]
    assert py.model == "other"
    tool_prog = topo.program("tool")
    assert tool_prog.build == ()
    assert tool_prog.argv("10.77.9.10", 9999, client=True) == ["./tool.sh", "10.77.9.10", "9999"]
    given = topo.program("given")
    assert given.argv("10.77.9.10", 9999, client=False) == [
        "./student/srv", "--port=9999", "10.77.9.10",
    ]  # fmt: skip
    assert given.model == "udp"  # the default for a UDP program
    assert topo.service("fork").model == "fork" and topo.service("udp").protocol == "udp"
    assert topo.scenarios[0].client_program == "tool"


BAD = """\
programs:
  my-fork:
    sources: [student/server.c, student/nothere.c]
    run: [./my-fork, "{port}", "{user}"]
    protocol: udp
    model: fork
  my-cli:
    sources: [student/client.c, student/wrap.c]
    build: [cc, "-DPORT={port}"]
  twice:
    sources: [student/wrap.c, student/../student/wrap.c]
  odd:
    sources: [student/wrap.h]
  cli:
    sources: [student/client.c, student/wrap.c]
services:
  mine: {node: server, program: my-fork, port: 9999}
  noport: {node: server, program: cli}
  opts: {node: server, program: cli, port: 7000, options: {backlog: 3}}
  typo: {node: server, program: clj, port: 7001}
  tcp: {node: server, program: fork_server}
scenarios:
  - {name: a, service: tcp, clients: [c1], client_program: my-clx, send: [a], expect: [A]}
  - {name: b, service: tcp, clients: [c1], client_program: my-cli, send: [a], expect: [A],
     repeat: 2}
"""


def test_every_problem_at_once_located(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    with pytest.raises(TopologyError) as err:
        load_topology(path)
    f = str(path)
    assert err.value.problems == [
        f"{f}:10: programs.my-fork.sources[1]: no such file",
        f"{f}:11: programs.my-fork.run[2]: unknown placeholder {{user}} in '{{user}}'; "
        "placeholders: {port}, {host}",
        f"{f}:13: programs.my-fork.model: model 'fork' does not go with protocol 'udp': a UDP "
        "program's model is 'udp'",
        f"{f}:16: programs.my-cli.build[1]: '-DPORT={{port}}': placeholders ({{port}}, {{host}}) "
        "apply to 'run' only",
        f"{f}:18: programs.twice.sources[1]: another source is also named 'wrap.c' "
        "(sources[0]); sources are copied under their own names",
        f"{f}:20: programs.odd.sources: cannot tell how to run these sources (not C, C++, one "
        ".py file or one executable file): give 'run' (and 'build')",
        f"{f}:25: services.noport: missing required key 'port' (user program 'cli')",
        f"{f}:26: services.opts.options.backlog: a user program takes no options; give its "
        "arguments in programs.cli.run",
        f"{f}:27: services.typo.program: unknown program 'clj' (did you mean 'cli'?); "
        "programs: dict_server, fork_server, iterative_server, thread_server, udp_echo, "
        "my-fork, my-cli, twice, odd, cli",
        f"{f}:30: scenarios[0].client_program: unknown program 'my-clx' (did you mean "
        "'my-cli'?); programs: my-fork, my-cli, twice, odd, cli",
        f"{f}:32: scenarios[1].repeat: 'repeat' does not apply to a client program "
        "(client_program)",
    ]


def test_port_below_1024_and_protocol_mismatch(tmp_path: Path) -> None:
    body = """\
programs:
  srv: {sources: [student/server.c, student/wrap.c]}
  udp-cli: {sources: [student/client.c], protocol: udp}
services:
  low: {node: server, program: srv, port: 80}
  ok: {node: server, program: srv, port: 9999}
scenarios:
  - {name: a, service: ok, clients: [c1], client_program: udp-cli, send: [a], expect: [A]}
"""
    path = write(tmp_path, body)
    problems = lab("validate", str(path))
    assert problems.returncode == 2
    assert problems.stderr.splitlines()[:2] == [
        f"{path}:12: services.low.port: port 80: a user program runs unprivileged and needs a "
        "port of 1024 or more",
        f"{path}:15: scenarios[0].client_program: program 'udp-cli' speaks UDP; service 'ok' "
        "does not",
    ]


def test_sources_anywhere_readable_relative_to_the_file(tmp_path: Path) -> None:
    """Sources are found from the topology's folder, not the working directory, and a
    readable file outside it is accepted (the lab only copies it)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "solo.py").write_text("print('hi')\n")
    body = f"""\
programs:
  solo: {{sources: [../elsewhere/solo.py]}}
  abs: {{sources: ["{elsewhere / "solo.py"}"]}}
services:
  s: {{node: server, program: solo, port: 9999}}
"""
    sub = tmp_path / "sub"
    sub.mkdir()
    path = write(sub, body)
    cwd = os.getcwd()
    try:
        os.chdir("/")
        topo = load_topology(path)
    finally:
        os.chdir(cwd)
    assert topo.program("solo").sources == (elsewhere / "solo.py",)
    assert topo.program("abs").sources == (elsewhere / "solo.py",)


def test_a_folder_source_is_walked_and_messages_name_it_as_written(tmp_path: Path) -> None:
    proj = tmp_path / "my proj"
    (proj / "sub").mkdir(parents=True)
    for name in ("main.c", "sub/util.c", "sub/util.h"):
        (proj / name).write_text("int x;\n")
    body = """\
programs:
  folder: {sources: ["my proj"], model: fork}
services:
  s: {node: server, program: folder, port: 9999}
"""
    program = load_topology(write(tmp_path, body)).program("folder")
    assert list(program.build) == [
        "cc", "-Wall", "-Wextra", "-O2", "-pthread", "-o", "folder",
        "my proj/main.c", "my proj/sub/util.c",
    ]  # fmt: skip
    compiler = "my proj/sub/util.c:3:1: error: x\nIn file included from my proj/main.c:1:\n"
    assert as_written(compiler, program) == compiler  # written as copied: unchanged
    moved = replace(program, written=("../elsewhere/my proj/",))
    assert as_written(compiler, moved) == (
        "../elsewhere/my proj/sub/util.c:3:1: error: x\n"
        "In file included from ../elsewhere/my proj/main.c:1:\n"
    )
