"""The error probes against real servers on loopback: ECONNREFUSED from a closed port,
EPIPE after the server's RST, and TIME_WAIT on the server's port after it closed first."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from typing import Any

from tests.programs.conftest import HOST, ServerFactory, program


def run_probe(kind: str, port: int, *args: str) -> tuple[int, dict[str, Any]]:
    argv = [*program("probe"), kind, "--host", HOST, "--port", str(port), "--json", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    lines = done.stdout.splitlines()
    assert len(lines) == 1, (done.stdout, done.stderr)
    doc: dict[str, Any] = json.loads(lines[0])
    return done.returncode, doc


def calls(doc: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = doc["connections"][0]["events"]
    return events


def test_refused_reports_econnrefused_and_the_local_port() -> None:
    with socket.create_server((HOST, 0)) as gone:
        port = gone.getsockname()[1]
    status, doc = run_probe("refused", port)
    assert status == 0 and doc["completed"] is True
    assert doc["error"] == "ECONNREFUSED" == doc["connections"][0]["error"]
    [event] = calls(doc)
    assert event["call"] == "connect"
    assert event["detail"] == f"connect {HOST}:{port}: ECONNREFUSED (Connection refused)"
    assert int(doc["connections"][0]["local"].rpartition(":")[2]) > 0


def test_refused_says_so_when_something_listens() -> None:
    with socket.create_server((HOST, 0)) as listener:
        status, doc = run_probe("refused", listener.getsockname()[1])
    assert status == 0 and doc["error"] is None
    assert [e["call"] for e in calls(doc)] == ["connect", "close"]


def test_epipe_after_the_server_closed_and_reset(start_server: ServerFactory) -> None:
    server = start_server("fork_server")
    status, doc = run_probe("epipe", server.port, "--pause", "0.3")
    assert status == 0 and doc["error"] == "EPIPE"
    events = calls(doc)
    assert events[1] == {**events[1], "call": "send", "bytes": 65537, "error": None}
    assert events[2]["line"] == "ERROR line longer than 65536 bytes; closing"
    eof = next(i for i, e in enumerate(events) if e.get("eof"))
    sends = [e for e in events[eof:] if e["call"] == "send"]
    # At least one write went out after the close (it draws the RST), the last one failed.
    assert [e["error"] for e in sends[:-1]] == [None] * (len(sends) - 1) and len(sends) >= 2
    assert sends[-1]["error"] == "EPIPE" and "EPIPE (Broken pipe)" in sends[-1]["detail"]
    server.wait_for(r"line-too-long")


def test_long_line_leaves_time_wait_on_the_servers_port(start_server: ServerFactory) -> None:
    server = start_server("fork_server")
    status, doc = run_probe("long-line", server.port)
    assert status == 0 and doc["error"] is None
    assert [e["call"] for e in calls(doc)] == ["connect", "send", "recv", "recv", "close"]
    local_port = doc["connections"][0]["local"].rpartition(":")[2]
    server.wait_for(rf"close {HOST}:{local_port} .* line-too-long")
    query = ["ss", "-Htn", "state", "time-wait", "sport", "=", f":{server.port}"]
    rows = subprocess.run(query, capture_output=True, text=True, check=True).stdout
    assert f"{HOST}:{local_port}" in rows


def test_epipe_gives_up_when_the_server_never_closes() -> None:
    with socket.create_server((HOST, 0)) as listener:
        held: list[socket.socket] = []
        accepter = threading.Thread(target=lambda: held.append(listener.accept()[0]))
        accepter.start()
        status, doc = run_probe("epipe", listener.getsockname()[1], "--timeout", "0.5")
        accepter.join()
        for conn in held:
            conn.close()
    assert status == 1 and doc["completed"] is False
    assert doc["error"] == "ETIMEDOUT" and calls(doc)[-1]["call"] == "recv"


def test_probe_refuses_an_unknown_kind() -> None:
    done = subprocess.run(
        [*program("probe"), "nope", "--host", HOST], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and "invalid choice: 'nope'" in done.stderr
