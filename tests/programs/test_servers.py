"""The TCP servers as real subprocesses on loopback, driven by real clients."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from lab.programs.wrap import MAX_LINE
from tests.programs.conftest import (
    HOST,
    ServerFactory,
    children_of,
    proc_stat,
    program,
    run_client,
    wait_until,
)

ECHO_SERVERS = [
    ("fork_server",),
    ("fork_server", "--double-fork"),
    ("thread_server",),
    ("iterative_server",),
]
ECHO_IDS = ["fork", "double-fork", "thread", "iterative"]
ALL_TCP = [*ECHO_SERVERS, ("dict_server",)]
ALL_IDS = [*ECHO_IDS, "dict"]
CONNECT_RE = re.compile(r"^connect 127\.0\.0\.1:(\d+) (pid=\d+|thread=Thread-\d+)$")
CLOSE_RE = re.compile(
    r"^close 127\.0\.0\.1:(\d+) (pid=\d+|thread=Thread-\d+) bytes_in=(\d+) bytes_out=(\d+)"
)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=10)
    return sock


def exchange(sock: socket.socket, line: bytes) -> bytes:
    sock.sendall(line)
    return sock.makefile("rb").readline()


def pid_in(line: str) -> int:
    match = re.search(r"pid=(\d+)", line)
    assert match is not None, line
    return int(match.group(1))


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("cmd", ECHO_SERVERS, ids=ECHO_IDS)
def test_echo_servers_upper_case_each_line_and_log(
    start_server: ServerFactory, cmd: tuple[str, ...]
) -> None:
    server = start_server(*cmd)
    status, doc = run_client(server.port, "--send", "hello", "--send", "Mixed Case 123")
    assert status == 0
    conn = doc["connections"][0]
    assert conn["replies"] == ["HELLO", "MIXED CASE 123"]
    assert doc["ok"] == 1 and doc["failed"] == 0
    local_port = conn["local"].split(":")[1]
    connect_line = server.wait_for(rf"^connect 127\.0\.0\.1:{local_port} ")[0]
    close_line = server.wait_for(rf"^close 127\.0\.0\.1:{local_port} ")[0]
    assert CONNECT_RE.match(connect_line), connect_line
    match = CLOSE_RE.match(close_line)
    assert match is not None, close_line
    assert int(match.group(3)) == int(match.group(4)) == len("hello\nMixed Case 123\n")
    if cmd[0] == "thread_server":
        assert "thread=Thread-" in connect_line
    else:
        served_by = pid_in(connect_line)
        assert (served_by == server.pid) == (cmd[0] == "iterative_server")
    assert server.stop() == 0


@pytest.mark.parametrize("name", ["fork_server", "thread_server"])
def test_200_concurrent_clients_all_answered(start_server: ServerFactory, name: str) -> None:
    server = start_server(name)
    status, doc = run_client(server.port, "--send", "abc", "--send", "xyz", "--count", "200")
    assert doc["ok"] == 200 and doc["failed"] == 0, [c for c in doc["connections"] if c["error"]]
    assert status == 0
    assert all(c["replies"] == ["ABC", "XYZ"] for c in doc["connections"])
    assert len({c["local"] for c in doc["connections"]}) == 200
    server.wait_for(r"^close ", count=200)
    if name == "fork_server":
        server.wait_for(r"^reaped ", count=200)
        assert children_of(server.pid) == {}
    else:
        assert len({line.split()[2] for line in server.matching(r"^connect ")}) == 200


def test_fork_server_no_reap_leaves_zombies_until_exit(start_server: ServerFactory) -> None:
    server = start_server("fork_server", "--no-reap")
    status, doc = run_client(server.port, "--send", "z", "--count", "20")
    assert status == 0 and doc["ok"] == 20
    server.wait_for(r"^close ", count=20)
    child_pids = {pid_in(line) for line in server.matching(r"^connect ")}
    wait_until(
        lambda: {p for p, s in children_of(server.pid).items() if s == "Z"} == child_pids,
        "20 zombie children",
    )
    assert server.matching(r"^reaped ") == []
    assert server.stop() == 0
    assert len(server.matching(r"^reaped pid=\d+ status=0$")) == 20
    assert all(proc_stat(pid) is None for pid in child_pids)


def test_fork_server_sigterm_stops_children_and_closes_listener(
    start_server: ServerFactory,
) -> None:
    server = start_server("fork_server")
    held = [connect(server.port) for _ in range(3)]
    for sock in held:
        assert exchange(sock, b"hold\n") == b"HOLD\n"
    children = {pid_in(line) for line in server.wait_for(r"^connect ", count=3)}
    assert set(children_of(server.pid)) == children
    assert server.stop() == 0
    assert server.matching(r"^shutdown signal=SIGTERM$")
    reaped = {pid_in(line) for line in server.matching(r"^reaped ")}
    assert reaped == children
    assert all(proc_stat(pid) is None for pid in children)
    for sock in held:
        assert sock.recv(100) == b""  # the child closed the connection before exiting
        sock.close()
    with pytest.raises(ConnectionRefusedError):
        connect(server.port)


def test_double_fork_grandchildren_do_not_outlive_the_server(start_server: ServerFactory) -> None:
    server = start_server("fork_server", "--double-fork")
    sock = connect(server.port)
    assert exchange(sock, b"grand\n") == b"GRAND\n"
    grandchild = pid_in(server.wait_for(r"^connect ")[0])
    child = pid_in(server.wait_for(r"^reaped ")[0])
    assert child != grandchild
    stat = proc_stat(grandchild)
    assert stat is not None and stat[0] != "Z"
    assert stat[1] != server.pid  # re-parented: the server is not its parent
    assert children_of(server.pid) == {}
    assert server.stop() == 0
    after = proc_stat(grandchild)
    assert after is None or after[0] == "Z"  # exited (perhaps not yet reaped by init)
    assert sock.recv(100) == b""
    sock.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("cmd", ALL_TCP, ids=ALL_IDS)
def test_signal_with_a_connection_open_exits_0(
    start_server: ServerFactory, cmd: tuple[str, ...], signum: int
) -> None:
    server = start_server(*cmd)
    sock = connect(server.port)
    sock.sendall(b"love\n")
    assert sock.makefile("rb").readline() != b""
    assert server.stop(signum) == 0
    assert server.matching(rf"^shutdown signal={signal.Signals(signum).name}$")
    assert children_of(server.pid) == {}
    sock.close()


@pytest.mark.parametrize("cmd", ALL_TCP, ids=ALL_IDS)
def test_eaddrinuse_is_one_line_and_exit_1(
    start_server: ServerFactory, cmd: tuple[str, ...]
) -> None:
    with socket.create_server((HOST, 0)) as busy:
        port = busy.getsockname()[1]
        done = subprocess.run(
            [*program(cmd[0]), "--host", HOST, "--port", str(port), *cmd[1:]],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert done.stderr == f"bind {HOST}:{port}: EADDRINUSE (Address already in use)\n"


def test_reuseaddr_is_what_lets_a_restart_bind_over_time_wait(start_server: ServerFactory) -> None:
    # Linux lets a bind pass a TIME_WAIT socket only if both sockets set SO_REUSEADDR.
    first = start_server("fork_server", "--reuseaddr")
    sock = connect(first.port)
    assert exchange(sock, b"x\n") == b"X\n"
    assert first.stop() == 0  # the server's child closes first: its side ends in TIME_WAIT
    assert sock.recv(10) == b""
    sock.close()
    again = subprocess.run(
        [*program("fork_server"), "--host", HOST, "--port", str(first.port)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert again.returncode == 1
    assert "EADDRINUSE" in again.stderr
    second = start_server("fork_server", "--reuseaddr", port=first.port)
    assert second.port == first.port


@pytest.mark.parametrize("cmd", ALL_TCP, ids=ALL_IDS)
def test_peer_reset_mid_line_is_logged_and_survived(
    start_server: ServerFactory, cmd: tuple[str, ...]
) -> None:
    server = start_server(*cmd)
    sock = connect(server.port)
    sock.sendall(b"half a li")
    server.wait_for(r"^connect ")
    reset(sock)
    assert server.wait_for(r"^close .* reset$")
    status, doc = run_client(server.port, "--send", "hello")
    assert status == 0 and doc["connections"][0]["replies"][0] in {"HELLO", "你好"}


@pytest.mark.parametrize("cmd", ECHO_SERVERS, ids=ECHO_IDS)
def test_peer_closing_mid_line_gets_the_partial_line_answered(
    start_server: ServerFactory, cmd: tuple[str, ...]
) -> None:
    server = start_server(*cmd)
    sock = connect(server.port)
    sock.sendall(b"unfinished")
    sock.shutdown(socket.SHUT_WR)
    assert sock.makefile("rb").read() == b"UNFINISHED"
    sock.close()
    server.wait_for(r"^close .* bytes_in=10 bytes_out=10$")
    assert server.proc.poll() is None


def send_quietly(sock: socket.socket, data: bytes) -> None:
    # The server may close before taking it all; that is the behaviour under test.
    with contextlib.suppress(OSError):
        sock.sendall(data)


@pytest.mark.parametrize("cmd", ALL_TCP, ids=ALL_IDS)
def test_a_1mib_line_is_refused_and_the_server_keeps_running(
    start_server: ServerFactory, cmd: tuple[str, ...]
) -> None:
    server = start_server(*cmd)
    sock = connect(server.port)
    sender = threading.Thread(
        target=send_quietly, args=(sock, b"a" * (1 << 20) + b"\n"), daemon=True
    )
    sender.start()
    stream = sock.makefile("rb")
    reply = stream.readline()
    assert reply.startswith(b"ERROR") and str(MAX_LINE).encode() in reply
    assert stream.read() == b""  # and then the connection is closed
    sender.join(30)
    sock.close()
    server.wait_for(r"^close .* line-too-long$")
    status, doc = run_client(server.port, "--send", "world")
    assert status == 0 and doc["connections"][0]["replies"][0] in {"WORLD", "世界"}


@pytest.mark.parametrize("cmd", ALL_TCP, ids=ALL_IDS)
def test_binary_garbage_does_not_kill_the_server(
    start_server: ServerFactory, cmd: tuple[str, ...]
) -> None:
    server = start_server(*cmd)
    sock = connect(server.port)
    garbage = bytes(range(256)).replace(b"\n", b"") + b"\xff\xfe\xc3\x28\n"
    reply = exchange(sock, garbage)
    assert reply.endswith(b"\n") and len(reply) == len(garbage)
    sock.close()
    status, _ = run_client(server.port, "--send", "still there")
    assert status == 0 and server.proc.poll() is None


def test_iterative_server_queues_the_second_client_until_the_first_leaves(
    start_server: ServerFactory,
) -> None:
    server = start_server("iterative_server")
    first = connect(server.port)
    assert exchange(first, b"first\n") == b"FIRST\n"
    second = connect(server.port)  # completes: the kernel's accept queue holds it
    second.sendall(b"second\n")
    first.close()
    assert second.makefile("rb").readline() == b"SECOND\n"
    second.close()
    events = server.wait_for(r"^(connect|close) ", count=3)
    assert [e.split()[0] for e in events[:3]] == ["connect", "close", "connect"]


def test_dict_server_translates_in_utf8(start_server: ServerFactory) -> None:
    server = start_server("dict_server")
    words = ["hello", "world", "love", "xyzzy", "Hello", "network", "  love  ", "你好"]
    status, doc = run_client(server.port, *[a for w in words for a in ("--send", w)])
    assert status == 0
    assert doc["connections"][0]["replies"] == [
        "你好",
        "世界",
        "爱",
        "xyzzy",
        "你好",
        "网络",
        "爱",
        "你好",
    ]
    sock = connect(server.port)
    assert exchange(sock, b"love\r\n") == "爱\n".encode()
    sock.close()


PROGRAMS = ["fork_server", "thread_server", "iterative_server", "dict_server", "udp_echo", "client"]


@pytest.mark.parametrize("name", PROGRAMS)
def test_help(name: str) -> None:
    done = subprocess.run([*program(name), "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    assert "--host" in done.stdout or "server" in done.stdout


def test_programs_import_only_the_standard_library() -> None:
    import sys

    code = (
        "import sys, lab.programs.client, lab.programs.udp_echo, lab.programs.fork_server, "
        "lab.programs.dict_server, lab.programs.iterative_server\n"
        "bad = [m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names "
        "and m.split('.')[0] not in ('lab', '__main__')]\nprint(bad)"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def few_descriptors() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))


def test_running_out_of_descriptors_is_logged_and_survived(start_server: ServerFactory) -> None:
    server = start_server("thread_server", preexec_fn=few_descriptors)
    held: list[socket.socket] = []
    try:
        emfile = r"^error accept: EMFILE \(Too many open files\)$"
        while not server.matching(emfile):
            assert len(held) < 40, server.lines
            sock = connect(server.port)
            held.append(sock)
            port = sock.getsockname()[1]
            # Either this connection is served, or accept() failed for want of a descriptor.
            server.wait_for(rf"^connect 127\.0\.0\.1:{port} |{emfile}")
        assert server.proc.poll() is None
    finally:
        for sock in held:
            sock.close()
    status, doc = run_client(server.port, "--send", "again")
    assert status == 0 and doc["connections"][0]["replies"] == ["AGAIN"]


@pytest.mark.parametrize("round_", range(5))
def test_fork_server_sigterm_amid_a_storm_of_child_exits_exits_0(
    start_server: ServerFactory, round_: int
) -> None:
    """SIGTERM while hundreds of children exit at once lands inside the SIGCHLD handler
    sooner or later; shutdown must still reap every child exactly once and exit 0."""
    server = start_server("fork_server")
    held = [connect(server.port) for _ in range(200)]
    for sock in held:
        sock.sendall(b"x\n")
    for sock in held:
        assert sock.recv(10) == b"X\n"
    server.wait_for(r"^connect ", count=200)
    for sock in held:
        sock.close()
    time.sleep(0.002 * round_)  # land at a different point of the storm each round
    status = server.stop()
    problems = server.matching(r"^error|Traceback|Error")
    assert status == 0 and problems == [], problems
    reaped = [pid_in(line) for line in server.matching(r"^reaped ")]
    assert len(reaped) == len(set(reaped)) == 200
