"""Snapshot parsers on the real commands' output around real sockets and processes, plus
fixed samples for the edge cases a live system does not reliably show."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator

import pytest

from lab.evidence.analysis.common import Endpoint
from lab.evidence.analysis.snapshots import (
    SocketRow,
    children,
    descendants,
    parse_netstat,
    parse_ps,
    parse_sockets,
    parse_ss,
    socket_states,
    states_over_time,
    zombies,
)
from tests.conftest import require

NETSTAT = ["netstat", "-tanup"]
SS = ["ss", "-tanpi"]
PS = ["ps", "-e", "-o", "pid=,ppid=,stat=,nlwp=,args="]


def run(argv: list[str]) -> str:
    require(shutil.which(argv[0]) is not None, f"needs {argv[0]} on PATH")
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=20).stdout


def pair_states(rows: Iterable[SocketRow], port: int, client_port: int) -> dict[str, str]:
    """State of the listener, the server's accepted end and the client's end."""
    out: dict[str, str] = {}
    for r in rows:
        if r.local.ip != "127.0.0.1":
            continue
        if r.local.port == port and r.remote.port == 0:
            out["listener"] = r.state
        elif r.local.port == port and r.remote.port == client_port:
            out["server"] = r.state
        elif r.local.port == client_port and r.remote.port == port:
            out["client"] = r.state
    return out


def settled_snapshot(port: int, cport: int, want: dict[str, str]) -> tuple[str, str]:
    """netstat and ss output once the kernel has reached ``want`` for this socket pair.
    A transition such as FIN_WAIT1 -> FIN_WAIT2 (the ACK of our FIN) completes a moment
    after the peer has read the FIN, so poll for it (bounded) instead of racing it; the
    assertions below still decide whether the parsers saw the states."""
    for _ in range(100):
        netstat_text, ss_text = run(NETSTAT), run(SS)
        if (
            pair_states(parse_netstat(netstat_text), port, cport) == want
            and pair_states(parse_ss(ss_text), port, cport) == want
        ):
            break
        time.sleep(0.02)
    return netstat_text, ss_text


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen()
    yield lsock
    lsock.close()


def test_socket_states_through_a_real_connection(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    server, _ = listener.accept()
    cport = client.getsockname()[1]
    want = {
        "during": {"listener": "LISTEN", "server": "ESTABLISHED", "client": "ESTABLISHED"},
        "half": {"listener": "LISTEN", "server": "CLOSE_WAIT", "client": "FIN_WAIT2"},
        "after": {"listener": "LISTEN", "client": "TIME_WAIT"},
    }
    phases = {}
    try:
        phases["during"] = settled_snapshot(port, cport, want["during"])
        client.close()  # client FIN: client -> FIN_WAIT2, server -> CLOSE_WAIT
        assert server.recv(1) == b""  # the FIN has arrived
        phases["half"] = settled_snapshot(port, cport, want["half"])
    finally:
        server.close()  # server FIN: the client, who closed first, ends in TIME_WAIT
    phases["after"] = settled_snapshot(port, cport, want["after"])

    for phase, (netstat_text, ss_text) in phases.items():
        for rows in (parse_netstat(netstat_text), parse_ss(ss_text)):
            assert pair_states(rows, port, cport) == want[phase], (phase, rows[0].source)
    during_rows = parse_ss(phases["during"][1])
    mine = [r for r in during_rows if r.local == Endpoint("127.0.0.1", port)]
    assert {r.pid for r in mine} == {os.getpid()}
    established = next(r for r in mine if r.state == "ESTABLISHED")
    assert "cwnd" in established.info and "mss" in established.info
    netstat_mine = [r for r in parse_netstat(phases["during"][0]) if r.local.port == port]
    assert {r.pid for r in netstat_mine} == {os.getpid()}
    timeline = states_over_time(
        {p: parse_sockets(text) for p, (text, _) in phases.items()}, port=port
    )
    assert timeline["after"].get("TIME_WAIT", 0) >= 1
    assert timeline["during"]["ESTABLISHED"] >= 2


def test_process_tree_threads_and_a_zombie() -> None:
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, daemon=True)
    worker.start()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        # Wait for the child to exit without reaping it: it stays a zombie.
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        rows = parse_ps(run(PS))
    finally:
        os.waitpid(pid, 0)
        stop.set()
        worker.join()
    me = next(r for r in rows if r.pid == os.getpid())
    assert me.nlwp >= 2
    assert [r.pid for r in zombies(rows, os.getpid())] == [pid]
    assert pid in {r.pid for r in children(rows, os.getpid())}
    assert me.pid in {r.pid for r in descendants(rows, me.ppid)}
    assert next(r for r in rows if r.pid == pid).zombie


NETSTAT_SAMPLE = """\
Active Internet connections (servers and established)
Proto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name
tcp        0      0 0.0.0.0:9999            0.0.0.0:*               LISTEN      412/python3
tcp        0     12 10.0.2.2:9999           10.0.1.2:40000          ESTABLISHED 415/sshd: root@pts
tcp6       0      0 :::22                   :::*                    LISTEN      -
tcp6       0      0 ::1:5000                ::1:41234               TIME_WAIT   -
udp        0      0 0.0.0.0:7777            0.0.0.0:*                           500/python3
udp        0      0 10.0.1.2:5353           10.0.2.2:7777           ESTABLISHED 501/python3
"""


def test_netstat_edge_cases() -> None:
    rows = parse_netstat(NETSTAT_SAMPLE)
    assert [(r.proto, r.state, r.pid) for r in rows] == [
        ("tcp", "LISTEN", 412),
        ("tcp", "ESTABLISHED", 415),
        ("tcp6", "LISTEN", None),
        ("tcp6", "TIME_WAIT", None),
        ("udp", "UNCONN", 500),
        ("udp", "ESTABLISHED", 501),
    ]
    assert rows[1].program == "sshd: root@pts" and rows[1].send_q == 12
    assert rows[2].local == Endpoint("::", 22) and rows[2].remote == Endpoint("::", 0)
    assert rows[3].local == Endpoint("::1", 5000)
    assert socket_states(rows, port=9999) == {"LISTEN": 1, "ESTABLISHED": 1}


SS_SAMPLE = """\
State     Recv-Q Send-Q  Local Address:Port   Peer Address:Port Process
LISTEN 0 128 0.0.0.0:9999 0.0.0.0:* users:(("python3",pid=412,fd=3),("python3",pid=420,fd=3))
\t cubic cwnd:10
ESTAB     0      0            10.0.2.2:9999       10.0.1.2:40000 users:(("python3",pid=420,fd=4))
\t cubic wscale:7,7 rto:204 rtt:0.05/0.025 mss:1448 cwnd:10 bytes_received:6
CLOSE-WAIT 1     0       [::ffff:10.0.2.2]:9999  [::ffff:10.0.1.2]:40002
FIN-WAIT-2 0     0       127.0.0.53%lo:53            *:*
"""


def test_ss_edge_cases() -> None:
    rows = parse_ss(SS_SAMPLE)
    assert [r.state for r in rows] == ["LISTEN", "ESTABLISHED", "CLOSE_WAIT", "FIN_WAIT2"]
    # A forked child that did not close the listening socket shares it with its parent.
    assert rows[0].processes == (("python3", 412, 3), ("python3", 420, 3))
    assert rows[1].info["wscale"] == "7,7" and rows[1].info["mss"] == "1448"
    assert rows[2].proto == "tcp6" and rows[2].local == Endpoint("::ffff:10.0.2.2", 9999)
    assert rows[2].pid is None and rows[2].info == {}
    assert rows[3].local == Endpoint("127.0.0.53", 53) and rows[3].remote == Endpoint("*", 0)
    assert rows[1].to_dict()["local"] == {"ip": "10.0.2.2", "port": 9999}


def test_ps_tree_edge_cases() -> None:
    rows = parse_ps(
        "    1     0 Ss       1 /sbin/init\n"
        "  412     1 S        1 python3 -m lab.programs.fork_server --port 9999\n"
        "  420   412 S        1 python3 -m lab.programs.fork_server --port 9999\n"
        "  421   412 Z        1 [python3] <defunct>\n"
        "  430   420 S        1 sleep 100\n"
        "  500     1 Sl       5 python3 -m lab.programs.thread_server\n"
    )
    assert [r.pid for r in children(rows, 412)] == [420, 421]
    assert [r.pid for r in descendants(rows, 412)] == [420, 421, 430]
    assert [r.pid for r in zombies(rows, 412)] == [421]
    assert zombies(rows, 1) == []
    assert rows[1].args == "python3 -m lab.programs.fork_server --port 9999"
    assert rows[-1].nlwp == 5


# -- inputs found by tests/fuzz/fuzz_snapshot.py: no exception, the row is skipped ---------------


def test_socket_row_with_a_queue_that_is_not_a_number_is_skipped() -> None:
    ss = (
        "State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
        'LISTEN 0$     128    0.0.0.0:8080       0.0.0.0:*         users:(("python3",pid=7,fd=3))\n'
        'LISTEN 0      128    0.0.0.0:8000       0.0.0.0:*         users:(("python3",pid=8,fd=3))\n'
    )
    assert [r.local.port for r in parse_ss(ss)] == [8000]
    netstat = (
        "Proto Recv-Q Send-Q Local Address Foreign Address State PID/Program name\n"
        "tcp        x      0 0.0.0.0:22    0.0.0.0:*       LISTEN 1/sshd\n"
        "tcp        0      0 0.0.0.0:80    0.0.0.0:*       LISTEN ²/nginx\n"
    )
    rows = parse_netstat(netstat)
    assert [(r.local.port, r.pid, r.program) for r in rows] == [(80, None, None)]


def test_numbers_that_int_refuses_are_not_numbers() -> None:
    # "²".isdigit() is true but int("²") raises; 5000 digits exceed int()'s string limit.
    huge = "9" * 5000
    ps = f"² 1 S 1 a\n1 {huge} S 1 b\n1 0 S x c\n12 1 S 3 python3 -m lab.programs.thread_server\n"
    assert [(r.pid, r.nlwp) for r in parse_ps(ps)] == [(12, 3)]
    ss = f"ESTAB 0 0 10.0.0.1:² 10.0.0.2:{huge}\n"
    (row,) = parse_ss(ss)
    assert (row.local.port, row.remote.port) == (0, 0)
