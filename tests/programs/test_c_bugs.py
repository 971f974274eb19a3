"""Spot the bug: the course notes' defects, each as a variant of the correct C program that
differs only by its bug (lab/programs/c/bugs/), run next to the correct one so that the
test shows what the bug does and that the correct program does not do it."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.programs.conftest import EVENT_TIMEOUT, HOST, CServerFactory, children_of, proc_stat
from tests.programs.test_c_programs import early_closer, exchange, run_str_cli

# More connections than the notes' table has slots (256), far enough past it for the
# overflow to reach the end of main's stack (measured: the crash comes after 505 to 575).
MANY_CONNECTIONS = 3000
RACE_RUNS = 200


def _one_by_one(port: int, count: int, server: subprocess.Popen[str]) -> int:
    """Open, use and close ``count`` connections in turn; how many got their reply before
    the server stopped answering."""
    for i in range(count):
        try:
            with socket.create_connection((HOST, port), timeout=EVENT_TIMEOUT) as sock:
                sock.sendall(b"n%d\n" % i)
                if sock.recv(100) != b"N%d\n" % i:
                    return i
        except OSError:
            return i
        if server.poll() is not None:
            return i
    return count


@pytest.mark.slow
@pytest.mark.parametrize("name", ["thread_server", "bug_thread_server"])
def test_thread_table_overflow(start_c: CServerFactory, name: str) -> None:
    """The notes' ts[256] indexed without bound: past 256 connections main writes over its
    own stack; the process dies of SIGSEGV once the writes reach the stack's end.  The
    correct server (state malloc'ed per thread) serves every connection."""
    server = start_c(name)
    served = _one_by_one(server.port, MANY_CONNECTIONS, server.proc)
    if name == "thread_server":
        assert served == MANY_CONNECTIONS
        assert server.proc.poll() is None
        return
    status = server.proc.wait(EVENT_TIMEOUT)
    print(f"\n{name}: served {served} connections, then died with status {status}")
    assert 256 < served < MANY_CONNECTIONS
    assert status == -signal.SIGSEGV


@pytest.mark.parametrize("name", ["dict_server", "bug_dict_server"])
def test_dictionary_key_and_framing(start_c: CServerFactory, name: str) -> None:
    """The notes' `string key = key;`: the key is never the request, so nothing is
    translated (compiled here, the self-copy comes out empty); and each read() is one
    request, so two words in one segment get one reply and a split word two."""
    server = start_c(name)
    one = exchange(server.port, b"hello\n").decode()
    two_in_one = exchange(server.port, b"hello\nworld\n").decode()
    split = exchange(server.port, b"ve\n", pause_after=b"lo").decode()
    print(f"\n{name}: {one!r} {two_in_one!r} {split!r}")
    if name == "dict_server":
        assert (one, two_in_one, split) == ("你好\n", "你好\n世界\n", "爱\n")
        return
    assert "你好" not in one + two_in_one and "爱" not in split  # nothing translated
    assert two_in_one.count("\n") == 1  # two words, one reply
    assert split.count("\n") == 2  # one word, two replies


@pytest.mark.parametrize("name", ["str_cli", "bug_str_cli"])
def test_client_after_the_server_closed(c_programs: dict[str, Path], name: str) -> None:
    """The notes' client writes whatever read() returned.  After the server's FIN read()
    returns 0: it prints nothing, says nothing, and goes on sending until a write fails
    (EPIPE); the correct client says the server terminated prematurely."""
    with early_closer(1) as port:
        done = run_str_cli(c_programs[name], port, "first\nsecond\nthird\nfourth\n")
    print(f"\n{name}: exit {done.returncode}, stdout {done.stdout!r}, stderr {done.stderr!r}")
    assert done.stdout == b"FIRST\n"  # no reply to "second": none came
    if name == "str_cli":
        assert done.stderr == b"str_cli: server terminated prematurely\n"
        assert done.returncode == 1
    else:
        # Silent about the close; what ends it (here a write failing with EPIPE once the
        # server's RST is back) is incidental.
        assert b"prematurely" not in done.stderr


def _zombie_left(exe: Path, settle: float) -> bool:
    """Start the server, connect and close at once (the child exits as fast as it can),
    and whether a zombie child is left ``settle`` seconds after the child has gone: a
    handler in place reaps it once the parent is next scheduled, which under load can
    take longer than the handful of milliseconds it takes on an idle machine."""
    proc = subprocess.Popen(
        [str(exe), "0", "--host", HOST], stderr=subprocess.PIPE, text=True
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        match = re.search(r":(\d+) pid=", proc.stderr.readline())
        assert match is not None
        socket.create_connection((HOST, int(match.group(1))), timeout=EVENT_TIMEOUT).close()
        while not proc.stderr.readline().startswith("close "):
            pass
        deadline = time.monotonic() + EVENT_TIMEOUT
        while any(state != "Z" for state in children_of(proc.pid).values()):
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.005)
        deadline = time.monotonic() + settle
        while _has_zombie(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.005)
        return _has_zombie(proc.pid)
    finally:
        proc.terminate()
        proc.wait(EVENT_TIMEOUT)


def _has_zombie(pid: int) -> bool:
    kids = children_of(pid)
    return any(proc_stat(kid) is not None and state == "Z" for kid, state in kids.items())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fork_server", "bug_fork_server"])
def test_sigchld_handler_after_the_first_fork(c_programs: dict[str, Path], name: str) -> None:
    """The notes install the SIGCHLD handler after the first fork: a first child that exits
    before it is in place is never reaped.  A race, so it is counted, not required: the
    frequency is printed, counting a zombie still there 50 ms after the child went.  The
    correct server reaps every one, given the time any event here has to happen."""
    if name == "fork_server":
        # Stops at the first zombie: each one costs the whole wait.
        assert not any(_zombie_left(c_programs[name], EVENT_TIMEOUT) for _ in range(RACE_RUNS))
        return
    zombies = sum(_zombie_left(c_programs[name], 0.05) for _ in range(RACE_RUNS))
    print(f"\n{name}: zombie left in {zombies} of {RACE_RUNS} runs")
