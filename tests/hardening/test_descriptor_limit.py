"""Servers run out of descriptors (RLIMIT_NOFILE 64, set by ``prlimit``) while a client on
another node holds 100 connections; they keep running, and once the connections close,
every one that waited in the accept queue is served and a normal client is answered.

Only the servers that keep a descriptor per connection (the thread and dictionary
servers) can reach the limit this way; they serve exactly as many connections as they
have descriptors left and log EMFILE for the rest. The fork server's parent closes each
connection after fork(), and the iterative server holds one at a time while the kernel
queues the rest: for those two the test demands no EMFILE at all at the same limit.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from lab.run.backends.base import Backend, Proc
from tests.hardening.conftest import (
    CLIENT_NODE,
    EVENT_TIMEOUT,
    SERVER_IP,
    SPECS,
    TCP_SERVERS,
    Running,
    start_server,
)

LIMIT = 64
HELD = 100
EMFILE = r"^error accept: EMFILE \(Too many open files\)$"
ONE_FD_PER_CONNECTION = {"thread", "dict"}


def hold(lan: Backend, server: Running, expect: int) -> tuple[dict[str, int], Proc]:
    """Start the holder on the client node; its report once its connections are up and
    ``expect`` of them answered."""
    log = lan.workdir(CLIENT_NODE) / f"holder-{server.spec.id}.log"
    argv = [lan.python, "-m", "tests.hardening.holder", "--host", str(SERVER_IP)]
    argv += ["--port", str(server.port), "--count", str(HELD), "--expect", str(expect)]
    proc = lan.spawn(CLIENT_NODE, argv, log=log)
    path = Path(str(log))  # netns nodes share the host's files
    deadline = time.monotonic() + 3 * EVENT_TIMEOUT
    while time.monotonic() < deadline and proc.running():
        text = path.read_text(encoding="utf-8")
        if text.endswith("\n"):
            report: dict[str, int] = json.loads(text.splitlines()[-1])
            return report, proc
        time.sleep(0.1)
    proc.stop()
    pytest.fail(f"the holder did not report: {path.read_text(encoding='utf-8')}")


@pytest.mark.parametrize("server_id", TCP_SERVERS)
def test_out_of_descriptors_is_survived_and_recovered(
    root: None, lan: Backend, server_id: str
) -> None:
    limit = ["prlimit", f"--nofile={LIMIT}:{LIMIT}", "--"]
    server = start_server(lan, SPECS[server_id], wrapper=limit, tag="-nofile")
    try:
        before = server.holding()
        mark = len(server.log_lines())
        if server_id in ONE_FD_PER_CONNECTION:
            served = LIMIT - before.fds  # one connection per descriptor still free
        else:
            served = 1 if server.spec.serial else HELD
        held, holder = hold(lan, server, served)
        try:
            assert held == {"established": HELD, "answered": served}
            assert server.proc.running()
            emfile = [line for line in server.log_lines()[mark:] if re.match(EMFILE, line)]
            assert bool(emfile) == (server_id in ONE_FD_PER_CONNECTION), emfile[:3]
        finally:
            assert holder.stop() == 0
        # Every connection that waited in the accept queue is accepted in the end.
        server.wait_for_log(r"^connect ", start=mark, count=HELD)
        server.wait_for_log(r"^close ", start=mark, count=HELD)
        server.answers_normally()
        after = server.holding(settle_fds=before.fds)
        assert after.settled, f"descriptors {before.fds} -> {after.fds}, children {after.children}"
    finally:
        assert server.stop() == 0
