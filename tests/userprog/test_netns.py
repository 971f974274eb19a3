"""Students' own programs on real namespaces: built with the real compilers, run as real
processes, judged on the same evidence as the lab's programs; every way a program can
misbehave ends the run with a clear message and leaves nothing behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lab.programs.userprog import NPROC
from lab.run.runuid import RUN_UIDS, claim_uid, lock_folder
from tests.labcli import lab
from tests.leftovers import netns_objects, run_id_of
from tests.results_schema import assert_valid_results
from tests.userprog.topo import student_dir, write

pytestmark = [pytest.mark.netns, pytest.mark.slow]

FORK = """\
  my-fork:
    sources: [student/server.c, student/wrap.c, student/wrap.h]
    model: fork
"""
CLIENT = """\
  my-cli:
    sources: [student/client.c, student/wrap.c, student/wrap.h]
"""


def processes_in(folder: str) -> list[str]:
    """Processes whose working directory or command line is inside ``folder``: a user
    program runs in its build folder, so one left running is found here."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(folder) or folder in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found


def assert_nothing_left(results: Path) -> str:
    assert_valid_results(results)
    run_id = run_id_of(results)
    assert netns_objects(run_id) == []
    assert processes_in(f"/tmp/socket-lab/{run_id}") == []
    return run_id


def run(topology: Path, out: Path) -> tuple[int, dict[str, object] | None, str]:
    proc = lab("run", str(topology), "--backend", "netns", "--out", str(out), "--json")
    summary = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, summary, proc.stderr


def checks(summary: dict[str, object] | None) -> dict[tuple[str, str], dict[str, object]]:
    assert summary is not None
    scenarios = summary["scenarios"]
    assert isinstance(scenarios, list)
    return {(s["name"], c["name"]): c for s in scenarios for c in s["checks"]}


def test_c_cxx_and_python_servers_with_a_c_client(root: None, tmp_path: Path) -> None:
    """A student's C fork server, C++ thread server and Python iterative server, driven by
    the lab's line client and by the student's own C client (str_cli): every check of
    their model passes, and the binaries and build logs are kept."""
    body = f"""\
programs:
{FORK}{CLIENT}  my-thread:
    sources: [student/thread_server.cpp]
    model: thread
  my-py:
    sources: [student/echo_server.py]
    model: iterative
  my-udp:
    sources: [student/udp_server.py]
    protocol: udp
  udp-cli:
    sources: [student/udp_client.py]
    protocol: udp
services:
  fork: {{node: server, program: my-fork, port: 9999}}
  thread: {{node: server, program: my-thread, port: 8000}}
  py: {{node: server, program: my-py, port: 9877}}
  udp: {{node: server, program: my-udp, port: 9000}}
scenarios:
  - {{name: own-client, service: fork, clients: [c1, c2], client_program: my-cli,
     send: [hello, world], expect: [HELLO, WORLD], hold: 2,
     claims: [handshake, n-children, children-reaped]}}
  - {{name: lab-client, service: fork, clients: [c1], send: [abc], expect: [ABC],
     concurrency: 3, hold: 2}}
  - {{name: threads, service: thread, clients: [c2], send: [abc], expect: [ABC],
     concurrency: 3, hold: 2}}
  - {{name: python, service: py, clients: [c2], client_program: my-cli, send: [x y],
     expect: [X Y], concurrency: 2}}
  - {{name: datagrams, service: udp, clients: [c1], send: [a, bb], expect: [A, BB]}}
  - {{name: own-udp, service: udp, clients: [c2], client_program: udp-cli, send: [a, bb],
     expect: [A, BB], claims: [datagram-boundaries]}}
"""
    out = tmp_path / "out"
    code, summary, stderr = run(write(tmp_path, body), out)
    found = checks(summary)
    failed = {k: c for k, c in found.items() if not c["passed"]}
    assert code == 0, (failed, stderr[-3000:])
    assert ("own-client", "replies") in found
    # The experiments' claims judge a user's program like the lab's (all passed: code 0).
    assert {("own-client", "handshake"), ("own-client", "N connections, N children")} <= set(found)
    assert str(found[("own-client", "one child per connection")]["detail"]).startswith("5 live")
    assert ("own-client", "children reaped") in found
    assert ("threads", "one process, a thread per connection") in found
    assert ("python", "captured") in found
    assert found[("python", "one client at a time")]["detail"] == (
        "2 connections served one after the other"
    )
    assert ("datagrams", "datagram boundaries") in found
    # The claim finds the UDP client program's datagrams by the port it reported.
    assert ("own-udp", "datagram boundaries") in found
    # Only the fork model's checks for the Python server (model: iterative).
    assert ("python", "children reaped") not in found
    for name, binary in (("my-fork", "my-fork"), ("my-cli", "my-cli"), ("my-thread", "my-thread")):
        assert (out / "programs" / name / binary).is_file()
        assert "exit status 0" in (out / "programs" / name / "build.log").read_text()
    run_json = json.loads((out / "run.json").read_text())
    own = run_json["scenarios"]["own-client"]["clients"]["c1"]["result"]["connections"][0]
    assert own["replies"] == ["HELLO", "WORLD"] and own["local"].startswith("10.77.9.11:")
    datagrams = run_json["scenarios"]["own-udp"]["clients"]["c2"]["result"]["connections"][0]
    assert datagrams["local"].startswith("0.0.0.0:")  # an unconnected socket: its port
    assert "listening on 9999" in (out / "server" / "service-fork.log").read_text()
    ps = (out / "server" / "snapshots" / "during.ps.txt").read_text()
    assert "./my-fork 9999" in ps
    assert_nothing_left(out)
    # Judged again from the folder alone, like any run.
    again = lab("report", str(out), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["passed"] is True
    assert "my-fork" in (out / "report.html").read_text()


def test_compile_error_exits_2_with_the_compilers_lines(root: None, tmp_path: Path) -> None:
    body = """\
programs:
  broken-prog:
    sources: [student/broken.c]
services:
  s: {node: server, program: broken-prog, port: 9999}
"""
    out = tmp_path / "out"
    before = set(os.listdir("/tmp/socket-lab")) if os.path.isdir("/tmp/socket-lab") else set()
    code, summary, stderr = run(write(tmp_path, body), out)
    assert code == 2, stderr
    assert summary is None
    # The compiler's own message, with the path as the topology wrote it.
    assert "student/broken.c:4:34: error: expected" in stderr
    assert "program broken-prog: build failed" in stderr
    assert not out.exists()
    after = set(os.listdir("/tmp/socket-lab")) if os.path.isdir("/tmp/socket-lab") else set()
    for rid in after - before:  # another user's run may have started meanwhile
        assert not (Path("/tmp/socket-lab") / rid / "programs" / "broken-prog").exists()


def test_crash_at_start(root: None, tmp_path: Path) -> None:
    body = """\
programs:
  crasher: {sources: [student/crash.c]}
services:
  s: {node: server, program: crasher, port: 9999}
scenarios:
  - {name: a, service: s, clients: [c1], send: [x], expect: [X]}
"""
    out = tmp_path / "out"
    code, _summary, stderr = run(write(tmp_path, body), out)
    assert code == 1
    assert "service s (crasher) on server exited before listening" in stderr
    assert "cannot start: no configuration" in stderr
    assert_nothing_left(out)


def test_never_listens_names_the_port(root: None, tmp_path: Path) -> None:
    body = """\
programs:
  silent: {sources: [student/silent.c]}
services:
  s: {node: server, program: silent, port: 9911}
scenarios:
  - {name: a, service: s, clients: [c1], send: [x], expect: [X]}
"""
    out = tmp_path / "out"
    code, _summary, stderr = run(write(tmp_path, body), out)
    assert code == 1
    assert (
        "service s (silent) on server is running but did not listen on tcp port 9911 "
        "within 20 s" in stderr
    )
    assert_nothing_left(out)


def test_hanging_client_program_is_killed(root: None, tmp_path: Path) -> None:
    body = f"""\
programs:
{FORK}  hang: {{sources: [student/hang_client.c, student/wrap.c, student/wrap.h]}}
services:
  s: {{node: server, program: my-fork, port: 9999}}
scenarios:
  - {{name: a, service: s, clients: [c1], client_program: hang, send: [x], expect: [X]}}
"""
    out = tmp_path / "out"
    code, summary, stderr = run(write(tmp_path, body), out)
    assert code == 1, stderr
    replies = checks(summary)[("a", "replies")]
    assert replies["passed"] is False
    assert "no reply line within 10 s: killed" in str(replies["detail"])
    assert_nothing_left(out)


def test_server_ignoring_sigterm_is_killed_and_reported(root: None, tmp_path: Path) -> None:
    body = """\
programs:
  stubborn: {sources: [student/stubborn.c, student/wrap.c, student/wrap.h]}
services:
  s: {node: server, program: stubborn, port: 9999}
scenarios:
  - {name: a, service: s, clients: [c1], send: [x], expect: [X]}
"""
    out = tmp_path / "out"
    code, summary, stderr = run(write(tmp_path, body), out)
    assert code == 1
    found = checks(summary)
    assert found[("a", "replies")]["passed"] is True
    stopped = found[("a", "service stopped on SIGTERM")]
    assert stopped["passed"] is False and "killed after the grace period" in str(stopped["detail"])
    service = json.loads((out / "run.json").read_text())["services"]["s"]
    assert service["killed_after_grace"] is True and service["exit_status"] == -9
    assert "did not stop within 5 s of SIGTERM: killed" in stderr
    assert_nothing_left(out)


def test_file_names_with_spaces_and_shell_characters(root: None, tmp_path: Path) -> None:
    """Build and run are argument lists: a space, a ';' and '$()' are parts of names."""
    student = tmp_path / "student"
    body = """\
programs:
  odd-names:
    sources: ["student/my server.c", "student/wrap;lib.c", student/wrap.h]
    build: [cc, -Wall, -o, "my fork", "my server.c", "wrap;lib.c"]
    run: ["./my fork", "{port}", "$(touch PWNED)"]
    model: fork
services:
  s: {node: server, program: odd-names, port: 9999}
scenarios:
  - {name: a, service: s, clients: [c1], send: [x], expect: [X]}
"""
    path = write(tmp_path, body)
    (student / "server.c").rename(student / "my server.c")
    (student / "wrap.c").rename(student / "wrap;lib.c")
    out = tmp_path / "out"
    code, summary, stderr = run(path, out)
    assert code == 0, (checks(summary), stderr[-2000:])
    assert (out / "programs" / "odd-names" / "my fork").is_file()
    assert not list(tmp_path.rglob("PWNED")) and not list(out.rglob("PWNED"))
    assert (
        "./my fork 9999 $(touch PWNED)"
        in (out / "server" / "snapshots" / "during.ps.txt").read_text()
    )
    assert_nothing_left(out)


def test_a_fork_server_called_iterative_fails_one_at_a_time(root: None, tmp_path: Path) -> None:
    """The model's check reads the wire: a server that serves two clients at once is not
    iterative, whatever the file says."""
    body = """\
programs:
  my-fork:
    sources: [student/server.c, student/wrap.c, student/wrap.h]
    model: iterative
services:
  s: {node: server, program: my-fork, port: 9999}
scenarios:
  - {name: a, service: s, clients: [c1], send: [x], expect: [X], concurrency: 2, hold: 1}
"""
    out = tmp_path / "out"
    code, summary, _stderr = run(write(tmp_path, body), out)
    assert code == 1
    check = checks(summary)[("a", "one client at a time")]
    assert check["passed"] is False and "two clients served at once" in str(check["detail"])
    assert_nothing_left(out)


def one_service(program: str, sources: str, send: str = "x") -> str:
    return f"""\
programs:
  {program}: {{sources: [{sources}]}}
services:
  s: {{node: server, program: {program}, port: 9999}}
scenarios:
  - {{name: a, service: s, clients: [c1], send: [{send}], expect: [{send}]}}
"""


def test_process_limit_holds_for_a_program_started_as_root(root: None, tmp_path: Path) -> None:
    """The lab runs as root, which RLIMIT_NPROC does not bind; the program runs as a uid
    of the run's own, which it does, and which no other run's program counts against (the
    other test worker's labs included): the limit less the program itself, exactly. Every
    child it started is gone after the run."""
    body = one_service("forker", "student/forker.c, student/wrap.c, student/wrap.h")
    out = tmp_path / "out"
    code, summary, stderr = run(write(tmp_path, body), out)
    assert code == 0, (checks(summary), stderr[-2000:])
    log = (out / "server" / "service-s.log").read_text()
    started = int(log.split("started ")[1].split()[0])
    assert started == NPROC - 1, log[:300]
    assert_nothing_left(out)


WHOAMI = """\
import os, socket, sys
print("uid", os.getuid(), "gid", os.getgid(), flush=True)
with socket.create_server(("0.0.0.0", int(sys.argv[1]))) as s:
    while True:
        conn, _ = s.accept()
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)
"""


def test_a_program_runs_as_a_uid_of_its_run_not_root_nor_nobody(root: None, tmp_path: Path) -> None:
    (student_dir(tmp_path) / "whoami.py").write_text(WHOAMI)
    out = tmp_path / "out"
    code, summary, stderr = run(write(tmp_path, one_service("who", "student/whoami.py")), out)
    assert code == 0, (checks(summary), stderr[-2000:])
    said = (out / "server" / "service-s.log").read_text().split()
    uid = int(said[1])
    assert said[:4] == ["uid", str(uid), "gid", str(uid)]
    assert RUN_UIDS[0] <= uid < RUN_UIDS[1]
    # Its lock went with the run: claiming it again from the same id finds it free.
    again, lock = claim_uid(run_id_of(out), lock_folder())
    os.close(lock)
    assert again == uid
    assert_nothing_left(out)


def test_output_is_capped_and_the_cut_noted(root: None, tmp_path: Path) -> None:
    body = one_service("chatty", "student/chatty.c, student/wrap.c, student/wrap.h")
    out = tmp_path / "out"
    code, summary, stderr = run(write(tmp_path, body), out)
    assert code == 0, (checks(summary), stderr[-2000:])  # it went on serving
    assert (out / "server" / "service-s.log").stat().st_size == 4 << 20
    assert json.loads((out / "run.json").read_text())["services"]["s"]["log_truncated"] is True
    assert "service s's log was cut at 4194304 bytes" in stderr
    assert_nothing_left(out)


def test_server_exiting_mid_run_fails_the_run(root: None, tmp_path: Path) -> None:
    body = one_service("once", "student/once.py")
    out = tmp_path / "out"
    code, summary, _stderr = run(write(tmp_path, body), out)
    assert code == 1
    found = checks(summary)
    assert found[("a", "replies")]["passed"] is True
    ran = found[("a", "service ran until stopped")]
    assert ran["passed"] is False and "ended before the lab stopped it: exit status 0" in str(
        ran["detail"]
    )
    assert "done after one client" in (out / "server" / "service-s.log").read_text()
    assert_nothing_left(out)
