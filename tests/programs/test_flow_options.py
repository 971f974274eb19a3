"""The line client's flow-control options (--repeat, --rcvbuf, --pause-reading) and the
fork server's --close-delay, on loopback."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time

from tests.conftest import require
from tests.programs.conftest import EVENT_TIMEOUT, HOST, ServerFactory, program, run_client


def _reply_after_every_line(listener: socket.socket, lines: int, got: list[int]) -> None:
    """Read ``lines`` lines before writing any reply: a client that waits for each reply
    before sending the next line never gets one."""
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(EVENT_TIMEOUT)
        data = b""
        try:
            while data.count(b"\n") < lines:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            pass
        got.append(data.count(b"\n"))
        if data.count(b"\n") == lines:
            conn.sendall(data.upper())


def test_pause_reading_sends_every_line_before_reading_a_reply() -> None:
    got: list[int] = []
    with socket.create_server((HOST, 0)) as listener:
        port = listener.getsockname()[1]
        server = threading.Thread(target=_reply_after_every_line, args=(listener, 30, got))
        server.start()
        status, doc = run_client(
            port, "--send", "a", "--send", "bc", "--repeat", "15", "--pause-reading", "0.2"
        )
        server.join(EVENT_TIMEOUT)
    conn = doc["connections"][0]
    assert got == [30]
    assert status == 0 and conn["error"] is None
    assert conn["sent"] == ["a", "bc"] * 15 and conn["replies"] == ["A", "BC"] * 15


def test_without_pause_the_client_waits_for_each_reply() -> None:
    got: list[int] = []
    with socket.create_server((HOST, 0)) as listener:
        port = listener.getsockname()[1]
        server = threading.Thread(target=_reply_after_every_line, args=(listener, 2, got))
        server.start()
        status, doc = run_client(port, "--send", "a", "--send", "b", "--timeout", "0.5")
        server.join(EVENT_TIMEOUT)
    assert status == 1 and "ETIMEDOUT" in doc["connections"][0]["error"]


def test_many_paused_replies_through_a_small_receive_buffer(start_server: ServerFactory) -> None:
    server = start_server("fork_server")
    line = "x" * 500
    status, doc = run_client(
        server.port, "--send", line, "--repeat", "200", "--rcvbuf", "4096", "--pause-reading", "0.5"
    )
    conn = doc["connections"][0]
    assert status == 0 and conn["replies"] == [line.upper()] * 200
    port = conn["local"].split(":")[1]
    server.wait_for(rf"^close 127\.0\.0\.1:{port} pid=\d+ bytes_in=100200 bytes_out=100200$")


def test_rcvbuf_sets_the_sockets_receive_buffer(start_server: ServerFactory) -> None:
    require(shutil.which("ss") is not None, "needs ss on PATH (run .ci/setup)")
    server = start_server("fork_server")
    argv = [*program("client"), "--host", HOST, "--port", str(server.port), "--send", "x"]
    client = subprocess.Popen([*argv, "--rcvbuf", "4096", "--hold", "60"], stdout=subprocess.PIPE)
    try:
        query = ["ss", "-Htmn", "state", "established", "dst", f"{HOST}:{server.port}"]
        deadline = time.monotonic() + EVENT_TIMEOUT
        found: list[str] = []
        while not found and time.monotonic() < deadline:
            shown = subprocess.run(query, capture_output=True, text=True).stdout
            found = re.findall(r"\brb(\d+)", shown)
            time.sleep(0.05)
        # The kernel doubles the value asked for (bookkeeping overhead).
        assert found == ["8192"]
    finally:
        client.terminate()
        client.wait(EVENT_TIMEOUT)


def test_close_delay_is_logged_and_bad_values_refused(start_server: ServerFactory) -> None:
    server = start_server("fork_server", "--close-delay", "0.2")
    status, doc = run_client(server.port, "--send", "x")
    assert status == 0
    port = doc["connections"][0]["local"].split(":")[1]
    server.wait_for(rf"^close 127\.0\.0\.1:{port} pid=\d+ bytes_in=2 bytes_out=2 close-delay=0\.2$")
    bad = subprocess.run(
        [*program("fork_server"), "--port", "0", "--close-delay", "-1"],
        capture_output=True,
        text=True,
        timeout=EVENT_TIMEOUT,
    )
    assert bad.returncode == 2 and "--close-delay: must be 0..3600 seconds, got -1" in bad.stderr
