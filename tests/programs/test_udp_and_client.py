"""The UDP echo server and client, and the line client's reporting."""

from __future__ import annotations

import socket
import subprocess
import threading

from tests.programs.conftest import HOST, ServerFactory, children_of, program, run_client


def test_udp_echo_returns_each_datagram_unchanged(start_server: ServerFactory) -> None:
    server = start_server("udp_echo")
    texts = ["hello", "two words", "你好 UTF-8", "x" * 1000]
    args = [a for t in texts for a in ("--send", t)]
    status, doc = run_client(server.port, *args, "--count", "3", name="udp_echo")
    assert status == 0
    assert doc["program"] == "udp_echo" and doc["server"] == f"{HOST}:{server.port}"
    assert doc["ok"] == 3 and doc["failed"] == 0
    for conn in doc["connections"]:
        assert conn["sent"] == texts and conn["replies"] == texts
        assert conn["error"] is None and conn["closed_early"] is False
        port = conn["local"].split(":")[1]
        lines = server.wait_for(rf"^datagram 127\.0\.0\.1:{port} bytes=\d+$", count=len(texts))
        assert [int(line.split("=")[-1]) for line in lines] == [len(t.encode()) for t in texts]
    assert server.stop() == 0
    assert server.matching(r"^shutdown signal=SIGTERM$")


def test_udp_keeps_datagram_boundaries(start_server: ServerFactory) -> None:
    server = start_server("udp_echo")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        for data in (b"one", b"", b"three"):
            sock.sendto(data, (HOST, server.port))
        replies = [sock.recvfrom(65535) for _ in range(3)]
    assert [data for data, _ in replies] == [b"one", b"", b"three"]
    assert {peer for _, peer in replies} == {(HOST, server.port)}


def test_udp_client_reports_a_missing_server_as_a_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((HOST, 0))  # bound but never answers
        port = silent.getsockname()[1]
        status, doc = run_client(port, "--send", "ping", "--timeout", "0.3", name="udp_echo")
    assert status == 1 and doc["ok"] == 0 and doc["failed"] == 1
    assert doc["connections"][0]["error"] == (
        f"recvfrom {HOST}:{port}: ETIMEDOUT (no reply within 0.3 s)"
    )


def test_client_reports_refused_connections() -> None:
    with socket.create_server((HOST, 0)) as gone:
        port = gone.getsockname()[1]
    status, doc = run_client(port, "--send", "x", "--count", "2")
    assert status == 1 and doc["failed"] == 2
    for conn in doc["connections"]:
        assert conn["error"] == f"connect {HOST}:{port}: ECONNREFUSED (Connection refused)"
        assert conn["local"] is None and conn["replies"] == []


def close_after_first_line(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    with conn:
        conn.makefile("rb").readline()
        conn.sendall(b"ONLY ONE\n")
        conn.makefile("rb").readline()  # read the second line, then close without answering


def test_client_says_when_the_server_closed_early() -> None:
    with socket.create_server((HOST, 0)) as listener:
        threading.Thread(target=close_after_first_line, args=(listener,), daemon=True).start()
        port = listener.getsockname()[1]
        done = subprocess.run(
            [*program("client"), "--host", HOST, "--port", str(port), "--send", "a", "--send", "b"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert done.stdout.splitlines() == ["ONLY ONE", "server closed the connection early"]


def test_client_json_closed_early(start_server: ServerFactory) -> None:
    with socket.create_server((HOST, 0)) as listener:
        threading.Thread(target=close_after_first_line, args=(listener,), daemon=True).start()
        status, doc = run_client(listener.getsockname()[1], "--send", "a", "--send", "b")
    conn = doc["connections"][0]
    assert status == 1 and conn["closed_early"] is True and conn["error"] is None
    assert conn["sent"] == ["a", "b"] and conn["replies"] == ["ONLY ONE"]


def test_client_reads_stdin_and_half_closes(start_server: ServerFactory) -> None:
    server = start_server("thread_server")
    status, doc = run_client(server.port, "--half-close", stdin="first\nsecond line\n")
    assert status == 0
    assert doc["connections"][0]["sent"] == ["first", "second line"]
    assert doc["connections"][0]["replies"] == ["FIRST", "SECOND LINE"]
    port = doc["connections"][0]["local"].split(":")[1]
    server.wait_for(rf"^close 127\.0\.0\.1:{port} thread=Thread-\d+ bytes_in=18 bytes_out=18$")


def test_client_count_with_limited_concurrency(start_server: ServerFactory) -> None:
    server = start_server("thread_server")
    status, doc = run_client(
        server.port, "--send", "h", "--count", "6", "--concurrency", "3", "--hold", "0.1"
    )
    assert status == 0 and doc["ok"] == 6
    assert [c["index"] for c in doc["connections"]] == list(range(6))
    locals_ = {c["local"] for c in doc["connections"]}
    assert len(locals_) == 6
    closed = server.wait_for(r"^close ", count=6)
    assert {line.split()[1] for line in closed} == locals_


def test_dictionary_data_file() -> None:
    from lab.programs.dict_server import DATA_FILE, load_dictionary

    table = load_dictionary()
    assert len(table) >= 200
    assert table["hello"] == "你好" and table["world"] == "世界" and table["love"] == "爱"
    raw = [line for line in DATA_FILE.read_text(encoding="utf-8").splitlines() if line]
    words = [line.split("\t")[0] for line in raw if not line.startswith("#")]
    assert len(words) == len(set(words)) == len(table)


def test_client_hold_keeps_the_connection_established(start_server: ServerFactory) -> None:
    server = start_server("fork_server")
    client = subprocess.Popen(
        [
            *program("client"),
            "--host",
            HOST,
            "--port",
            str(server.port),
            "--send",
            "x",
            "--hold",
            "60",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdout is not None
        assert client.stdout.readline() == "X\n"  # replied, now holding
        child = int(server.wait_for(r"^connect ")[0].rsplit("=", 1)[1])
        assert client.poll() is None and server.matching(r"^close ") == []
        assert child in children_of(server.pid)
    finally:
        client.terminate()
        client.wait(10)
    server.wait_for(r"^close ")
