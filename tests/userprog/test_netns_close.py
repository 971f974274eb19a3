"""A student's classic leak on real namespaces: the fork server's parent never closes its
copy of the connected socket, so the connection sits in CLOSE_WAIT until the server is
stopped. Its twin, the same server with the close, passes the same claim, and so does a
server that lingers half a second in CLOSE_WAIT before it closes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.userprog.test_netns import assert_nothing_left, checks, run
from tests.userprog.topo import student_dir, write

pytestmark = [pytest.mark.netns, pytest.mark.slow]

PARENT_CLOSE = "        close(cfd);\n    }\n}"

BODY = """\
programs:
  closes: {sources: [student/server.c, student/wrap.c, student/wrap.h], model: fork}
  leaks: {sources: [student/leaky.c, student/wrap.c, student/wrap.h], model: fork}
  lingers: {sources: [student/linger.py], model: other}
services:
  good: {node: server, program: closes, port: 9999}
  bad: {node: server, program: leaks, port: 9998}
  slow: {node: server, program: lingers, port: 9997}
scenarios:
  - {name: closes, service: good, clients: [c1], send: [x], expect: [X],
     claims: [close-wait-on-server]}
  - {name: leaks, service: bad, clients: [c2], send: [x], expect: [X],
     claims: [close-wait-on-server]}
  - {name: lingers, service: slow, clients: [c1], send: [x], expect: [X],
     claims: [close-wait-on-server]}
"""
# Closes each connection half a second after the client's FIN, in a thread of its own.
LINGER = """\
import socket, sys, threading, time

def serve(conn):
    with conn, conn.makefile("rb") as f:
        for line in f:
            conn.sendall(line.upper())
        time.sleep(0.5)

with socket.create_server(("0.0.0.0", int(sys.argv[1]))) as s:
    while True:
        threading.Thread(target=serve, args=(s.accept()[0],)).start()
"""


def test_a_server_that_never_closes_its_side_fails_close_wait(root: None, tmp_path: Path) -> None:
    student = student_dir(tmp_path)
    source = (student / "server.c").read_text()
    assert source.count(PARENT_CLOSE) == 1
    (student / "leaky.c").write_text(source.replace(PARENT_CLOSE, "    }\n}"))
    (student / "linger.py").write_text(LINGER)
    out = tmp_path / "out"
    code, summary, stderr = run(write(tmp_path, BODY, net=19), out)
    assert code == 1, stderr[-2000:]
    found = checks(summary)
    good = found[("closes", "server passes CLOSE_WAIT")]
    bad = found[("leaks", "server passes CLOSE_WAIT")]
    assert good["passed"] is True, good["detail"]
    slow = found[("lingers", "server passes CLOSE_WAIT")]
    assert slow["passed"] is True, slow["detail"]
    assert bad["passed"] is False
    assert "1 of 1 connections still in CLOSE_WAIT on the server" in str(bad["detail"])
    assert_nothing_left(out)
