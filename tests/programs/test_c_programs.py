"""The course's C and C++ programs (lab/programs/c/), built with the real compilers and run
on loopback: the same behaviour and log lines as their Python twins."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.programs.conftest import (
    HOST,
    CServerFactory,
    Server,
    children_of,
    wait_until,
)

ECHO_SERVERS = ["fork_server", "thread_server", "iterative_server"]


def exchange(port: int, data: bytes, pause_after: bytes = b"") -> bytes:
    """Send ``pause_after`` first (if any), wait, then ``data``; half-close and read every
    reply up to the server's EOF."""
    with socket.create_connection((HOST, port), timeout=20) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if pause_after:
            sock.sendall(pause_after)
            time.sleep(0.2)  # so that the rest travels in a segment of its own
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@contextlib.contextmanager
def held(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections, each having had one reply, held open until the block ends."""
    socks: list[socket.socket] = []
    try:
        for i in range(count):
            sock = socket.create_connection((HOST, port), timeout=20)
            socks.append(sock)
            sock.sendall(b"held %d\n" % i)
            assert sock.recv(100) == b"HELD %d\n" % i
        yield socks
    finally:
        for sock in socks:
            sock.close()


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_all_build_warnings_clean(c_programs: dict[str, Path]) -> None:
    """The fixture fails on any compiler output; every program is an executable."""
    assert all(os.access(path, os.X_OK) for path in c_programs.values())


@pytest.mark.parametrize("name", ECHO_SERVERS)
def test_echo_servers_upper_case_each_line(start_c: CServerFactory, name: str) -> None:
    server = start_c(name)
    assert exchange(server.port, b"ing\nsecond line\n", pause_after=b"hello wor") == (
        b"HELLO WORING\nSECOND LINE\n"
    )
    (close,) = server.wait_for(r"^close ")
    assert re.search(r"bytes_in=25 bytes_out=25$", close), close
    assert server.stop() == 0
    assert server.lines[-2] == "shutdown signal=SIGTERM"


def test_bind_failure_names_the_errno_and_address(
    start_c: CServerFactory, c_programs: dict[str, Path]
) -> None:
    first = start_c("fork_server")
    done = subprocess.run(
        [str(c_programs["thread_server"]), str(first.port), "--host", HOST],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == f"bind {HOST}:{first.port}: EADDRINUSE (Address already in use)"


def test_bad_port_is_a_usage_error(c_programs: dict[str, Path]) -> None:
    done = subprocess.run(
        [str(c_programs["fork_server"]), "99999"], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 2
    assert "port must be 0..65535: 99999" in done.stderr


def test_udp_server_takes_only_the_python_twins_options(c_programs: dict[str, Path]) -> None:
    done = subprocess.run(
        [str(c_programs["udp_echo_server"]), "0", "--backlog", "5"],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert done.returncode == 2
    assert "unexpected argument: --backlog" in done.stderr


def run_str_cli(exe: Path, port: int, text: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(exe), HOST, str(port)], input=text.encode(), capture_output=True, timeout=30
    )


def test_str_cli_prints_each_reply(start_c: CServerFactory, c_programs: dict[str, Path]) -> None:
    server = start_c("thread_server")
    done = run_str_cli(c_programs["str_cli"], server.port, "one\ntwo three\nno newline")
    assert done.stdout == b"ONE\nTWO THREE\nNO NEWLINE\n"
    assert done.returncode == 0, done.stderr


@contextlib.contextmanager
def early_closer(lines_before_close: int) -> Iterator[int]:
    """A server that answers ``lines_before_close`` lines, reads one more and closes."""
    listener = socket.create_server((HOST, 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as reader:
            for _ in range(lines_before_close):
                conn.sendall(reader.readline().upper())
            reader.readline()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        thread.join(20)
        listener.close()


def test_str_cli_reports_a_server_that_closes_early(c_programs: dict[str, Path]) -> None:
    with early_closer(1) as port:
        done = run_str_cli(c_programs["str_cli"], port, "first\nsecond\nthird\n")
    assert done.stdout == b"FIRST\n"
    assert done.stderr == b"str_cli: server terminated prematurely\n"
    assert done.returncode == 1


def test_udp_echo_round_trip(start_c: CServerFactory, c_programs: dict[str, Path]) -> None:
    server = start_c("udp_echo_server")
    assert re.match(r"^listening udp 127\.0\.0\.1:\d+ pid=\d+$", server.lines[0])
    done = subprocess.run(
        [str(c_programs["udp_echo_client"]), HOST, str(server.port)],
        input="hello\n你好 world\n".encode(), capture_output=True, timeout=30,
    )  # fmt: skip
    assert done.stdout.decode() == "hello\n你好 world\n"
    assert done.returncode == 0, done.stderr
    datagrams = server.wait_for(r"^datagram ", 2)
    assert [d.split()[-1] for d in datagrams] == ["bytes=5", "bytes=12"]
    # A raw datagram keeps its boundaries and bytes (no newline added or taken).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(20)
        sock.sendto(b"a\nb", (HOST, server.port))
        assert sock.recvfrom(100)[0] == b"a\nb"


def test_udp_client_gives_up_on_a_lost_datagram(c_programs: dict[str, Path]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((HOST, 0))  # receives, never answers: the echo is "lost"
        port = silent.getsockname()[1]
        done = subprocess.run(
            [str(c_programs["udp_echo_client"]), HOST, str(port), "--timeout", "0.3"],
            input=b"anyone?\n", capture_output=True, timeout=30,
        )  # fmt: skip
        assert silent.recv(100) == b"anyone?"
    assert done.returncode == 1
    assert done.stderr.decode() == f"recvfrom {HOST}:{port}: ETIMEDOUT (no reply within 0.3 s)\n"


def test_dictionary_translates_line_by_line(start_c: CServerFactory) -> None:
    server = start_c("dict_server")
    assert re.match(r"^dictionary .*dictionary\.tsv words=\d+$", server.lines[0])
    got = exchange(server.port, b"hello\nworld\nlove\nzzz unknown\nHello\n")
    assert got.decode() == "你好\n世界\n爱\nzzz unknown\n你好\n"


def test_dictionary_frames_lines_across_segments(start_c: CServerFactory) -> None:
    server = start_c("dict_server")
    # Two words in one segment: two replies; one word split over two segments: one reply.
    assert exchange(server.port, b"hello\nworld\n").decode() == "你好\n世界\n"
    assert exchange(server.port, b"ve\n", pause_after=b"lo").decode() == "爱\n"


@pytest.mark.slow
def test_fork_server_one_child_per_connection_all_reaped(start_c: CServerFactory) -> None:
    server = start_c("fork_server")
    with held(server.port, 50):
        kids = children_of(server.pid)
        assert len(kids) == 50 and set(kids.values()) <= {"S", "R"}, kids
    server.wait_for(r"^reaped pid=\d+ status=0$", 50)
    wait_until(lambda: not children_of(server.pid), "every child gone (reaped, no zombie)")
    reaped = {int(line.split()[1][4:]) for line in server.matching(r"^reaped ")}
    assert reaped == set(kids)


@pytest.mark.slow
def test_thread_server_n_plus_one_threads(start_c: CServerFactory) -> None:
    server = start_c("thread_server")
    assert threads_of(server.pid) == 1
    with held(server.port, 50):
        assert threads_of(server.pid) == 51
        assert not children_of(server.pid)
    server.wait_for(r"^close ", 50)
    wait_until(lambda: threads_of(server.pid) == 1, "the threads to end")


@pytest.mark.slow
def test_iterative_server_one_client_at_a_time(start_c: CServerFactory) -> None:
    server = start_c("iterative_server")
    with held(server.port, 1):
        # The second client's handshake completes (the accept queue), but no answer yet.
        second = socket.create_connection((HOST, server.port), timeout=20)
        second.sendall(b"second\n")
        second.settimeout(1.0)
        with pytest.raises(TimeoutError):
            second.recv(100)
        assert len(server.matching(r"^connect ")) == 1
    second.settimeout(20)
    assert second.recv(100) == b"SECOND\n"
    second.close()
    connects = server.wait_for(r"^connect ", 2)
    closes = server.matching(r"^close ")
    # The first was closed before the second was even accepted.
    assert server.lines.index(closes[0]) < server.lines.index(connects[1])


def test_server_log_lines_match_the_python_twins(start_c: CServerFactory) -> None:
    server: Server = start_c("fork_server", "--backlog", "7")
    assert re.match(r"^listening tcp 127\.0\.0\.1:\d+ pid=\d+ backlog=7$", server.lines[0])
    exchange(server.port, b"x\n")
    server.wait_for(r"^reaped pid=\d+ status=0$")
    (connect,) = server.matching(r"^connect ")
    assert re.match(r"^connect 127\.0\.0\.1:\d+ pid=\d+$", connect)
