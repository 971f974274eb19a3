"""lab.programs.supervise with real processes: servers and clients on loopback, captures
between two network namespaces."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dpkt
import pytest

from lab.programs.supervise import job_words
from lab.programs.supervise_net import closing_connections, open_ports
from lab.run.backends.base import Owner, process_start
from tests.programs import conftest as programs_conftest
from tests.programs.conftest import read, running

# Upper bound for waiting on something the test expects; never a speed assertion.
EVENT_TIMEOUT = 30.0
SUPERVISE = [sys.executable, "-m", "lab.programs.supervise"]


def program(name: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"lab.programs.{name}", *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], bool], what: str) -> None:
    programs_conftest.wait_until(condition, what, EVENT_TIMEOUT)


def listening_server(log: Path, supervisor: int) -> Owner:
    """The server whose "listening" line is in ``log``, known by pid and start time: the
    start is read while the server is the supervisor's child, so not yet another's pid."""
    wait_until(lambda: "listening tcp" in read(log), f"the listening line in {log}")
    (pid,) = map(int, re.findall(r"listening tcp \S+ pid=(\d+)", read(log)))
    server = Owner(pid, process_start(pid))
    assert pid in children_of(supervisor), f"the server (pid {pid}) is not the supervisor's"
    return server


# -- a bad job list -------------------------------------------------------------------------


def test_a_bad_job_list_exits_2_before_starting_anything(tmp_path: Path) -> None:
    done = subprocess.run(
        [*SUPERVISE, "--ready-file", str(tmp_path / "ready"), "--", "serve", "s", "5", "x"],
        capture_output=True,
        text=True,
        timeout=EVENT_TIMEOUT,
    )
    assert done.returncode == 2
    assert "fewer given" in done.stderr
    assert not (tmp_path / "ready").exists()


# -- /proc/net -----------------------------------------------------------------------------------


def test_open_ports_sees_a_tcp_listener_and_a_bound_udp_socket() -> None:
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        udp.bind(("127.0.0.1", 0))
        tcp_port, udp_port = tcp.getsockname()[1], udp.getsockname()[1]
        ports = {(p.proto, p.port) for p in open_ports()}
        assert ("tcp", tcp_port) not in ports  # bound but not listening yet
        assert ("udp", udp_port) in ports
        tcp.listen()
        ports = {(p.proto, p.port) for p in open_ports()}
        assert ("tcp", tcp_port) in ports
    ports = {(p.proto, p.port) for p in open_ports()}
    assert ("tcp", tcp_port) not in ports


def own_rows(port: int, folder: Path) -> Path:
    """A copy of this host's /proc/net/tcp with only the rows of ``port`` (either end), so
    that connections of other processes (the suite's other worker) cannot change the count."""
    lines = Path("/proc/net/tcp").read_text().splitlines()
    mine = [
        line for line in lines[1:] if {f"{port:04X}"} & {a.split(":")[1] for a in line.split()[1:3]}
    ]
    (folder / "tcp").write_text("\n".join([lines[0], *mine]) + "\n")
    return folder


def test_an_established_connection_counts_until_it_is_closed(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert closing_connections(own_rows(port, tmp_path)) == 0  # a LISTEN row only
        client = socket.create_connection(("127.0.0.1", port))
        server, _ = listener.accept()
        # Two ends of one established connection, both on this host.
        assert closing_connections(own_rows(port, tmp_path)) == 2
        client.close()  # FIN_WAIT2 and CLOSE_WAIT: still closing
        assert closing_connections(own_rows(port, tmp_path)) == 2
        server.close()  # LAST_ACK, then gone; the client's end in TIME_WAIT
        deadline = time.monotonic() + EVENT_TIMEOUT
        while closing_connections(own_rows(port, tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert closing_connections(own_rows(port, tmp_path)) == 0


# -- running jobs on loopback ------------------------------------------------------------------


def run_supervise(
    tmp_path: Path, options: list[str], *jobs: list[str]
) -> subprocess.CompletedProcess[str]:
    words = [w for job in jobs for w in job]
    argv = [*SUPERVISE, "--node", "n1", "--results", str(tmp_path / "results")]
    argv += ["--ready-file", str(tmp_path / "ready"), *options, "--", *words]
    return subprocess.run(argv, capture_output=True, text=True, timeout=EVENT_TIMEOUT * 2)


def test_clients_run_after_the_servers_listen_and_print_their_replies(tmp_path: Path) -> None:
    port = free_port()
    server = program("thread_server", "--host", "127.0.0.1", "--port", str(port))
    client = program("client", "--host", "127.0.0.1", "--port", str(port), "--send", "hello")
    udp_port = free_port()
    udp_server = program("udp_echo", "server", "--host", "127.0.0.1", "--port", str(udp_port))
    udp_client = program(
        "udp_echo", "client", "--host", "127.0.0.1", "--port", str(udp_port), "--send", "ping"
    )
    words = job_words("serve", "echo", server) + job_words("serve", "udp", udp_server)
    words += job_words("client", "talk", client) + job_words("client", "dgram", udp_client)
    argv = [*SUPERVISE, "--node", "n1", "--results", str(tmp_path / "results")]
    argv += ["--ready-file", str(tmp_path / "ready")]
    argv += ["--listen", f"tcp:{port}", "--listen", f"udp:{udp_port}", "--", *words]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = tmp_path / "results" / "n1"
    try:
        # A node with servers keeps serving after its own clients are done. The last client
        # has printed its reply a moment before it exits: wait until only the two servers
        # are left as children, or SIGTERM would cut that client short.
        wait_until(lambda: "ping" in read(out / "dgram.log"), "the last client's reply")
        wait_until(lambda: len(children_of(proc.pid)) == 2, "the clients to exit")
        assert proc.poll() is None
        echo = listening_server(out / "echo.log", proc.pid)
    finally:
        stdout, stderr = stop_node(proc)
    assert proc.returncode == 0, stderr  # the clients' status
    # The clients ran without a single refused connection: the servers were listening first.
    assert "talk| HELLO" in stdout
    assert re.search(r"^dgram\| ping", stdout, re.M)
    assert "client talk: exit 0" in stderr
    assert "refused" not in stderr.lower()
    assert "HELLO" in read(out / "talk.log")
    log = read(out / "echo.log")
    assert "listening tcp" in log
    assert "shutdown signal=SIGTERM" in log
    assert not running(echo)
    assert not (tmp_path / "ready").exists()


def stop_node(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Stop a supervisor as a node is stopped, by SIGTERM, on which it stops its jobs first;
    its stdout and stderr. Past EVENT_TIMEOUT, SIGKILL it and the jobs it started, each the
    leader of a session of its own: killed alone, it would leave them running."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=EVENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        for job in children_of(proc.pid):  # unreaped children: their pids are still theirs
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job, signal.SIGKILL)
        proc.kill()
        return proc.communicate()


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(c) for c in read(task / "children").split()]
    return found


def test_every_client_runs_and_the_first_failure_is_the_exit_status(tmp_path: Path) -> None:
    fail = [sys.executable, "-c", "import sys; print('first'); sys.exit(3)"]
    second = [sys.executable, "-c", "print('second ran')"]
    last = [sys.executable, "-c", "import sys; sys.exit(5)"]
    done = run_supervise(
        tmp_path,
        [],
        job_words("client", "a", fail),
        job_words("client", "b", second),
        job_words("client", "c", last),
    )
    assert done.returncode == 3
    assert "a| first" in done.stdout
    assert "b| second ran" in done.stdout
    assert "client c: exit 5" in done.stderr


# A client that says it is running, then waits; on SIGTERM it ends well (exit 0) or, with no
# handler, is cut short by the signal.
WAITER = """
import signal, sys, time
if sys.argv[1] == "ends-well":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("running", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize(
    ("first", "then_another", "status"),
    [
        ("ends-well", False, 0),  # it ended well: counted, though the stop came during it
        ("cut-short", False, 128 + signal.SIGTERM),
        ("ends-well", True, 128 + signal.SIGTERM),  # the next client never ran
    ],
)
def test_a_stop_during_a_client_counts_it_only_if_it_ended_well(
    tmp_path: Path, first: str, then_another: bool, status: int
) -> None:
    words = job_words("client", "wait", [sys.executable, "-c", WAITER, first])
    if then_another:
        words += job_words("client", "next", [sys.executable, "-c", "print('next ran')"])
    argv = [*SUPERVISE, "--node", "n1", "--results", str(tmp_path / "results")]
    argv += ["--ready-file", str(tmp_path / "ready"), "--", *words]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log = tmp_path / "results" / "n1" / "wait.log"
        wait_until(lambda: "running" in read(log), "the client to run")
    finally:
        stdout, stderr = stop_node(proc)
    assert proc.returncode == status, stderr
    assert "next ran" not in stdout


def test_a_server_that_cannot_start_fails_the_node(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = program("fork_server", "--host", "127.0.0.1", "--port", str(port))
        done = run_supervise(
            tmp_path,
            ["--listen", f"tcp:{port + 1 if port < 65535 else port - 1}"],
            job_words("serve", "fork", server),
            job_words("client", "never", [sys.executable, "-c", "print('client ran')"]),
        )
    assert done.returncode == 1
    assert "fork exit 1 before listening" in done.stderr
    assert "EADDRINUSE" in done.stderr
    assert "client ran" not in done.stdout


@pytest.fixture
def server_node(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    """A server-only supervisor running in the background, stopped by the test or here."""
    port = free_port()
    server = program("fork_server", "--host", "127.0.0.1", "--port", str(port))
    argv = [*SUPERVISE, "--node", "srv", "--results", str(tmp_path / "results")]
    argv += ["--ready-file", str(tmp_path / "ready"), "--listen", f"tcp:{port}", "--"]
    argv += job_words("serve", "fork", server)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield proc, port, tmp_path
    finally:
        stop_node(proc)


def check(tmp_path: Path, *listen: str) -> subprocess.CompletedProcess[str]:
    argv = [*SUPERVISE, "--check", "--ready-file", str(tmp_path / "ready")]
    argv += [w for spec in listen for w in ("--listen", spec)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=EVENT_TIMEOUT)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_server_node_is_healthy_until_signalled_then_stops_its_children(
    server_node: tuple[subprocess.Popen[str], int, Path], signum: int
) -> None:
    proc, port, tmp_path = server_node
    wait_until(lambda: check(tmp_path, f"tcp:{port}").returncode == 0, "the health check")
    unhealthy = check(tmp_path, f"tcp:{port}", f"udp:{port}")
    assert unhealthy.returncode == 1
    assert f"not listening: udp:{port}" in unhealthy.stdout
    # It keeps serving: a connection gets its reply.
    with socket.create_connection(("127.0.0.1", port), timeout=EVENT_TIMEOUT) as conn:
        conn.sendall(b"still here\n")
        assert conn.makefile("rb").readline() == b"STILL HERE\n"
    log = tmp_path / "results" / "srv" / "fork.log"
    server = listening_server(log, proc.pid)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=EVENT_TIMEOUT)
    assert proc.returncode == 0
    assert f"{signal.Signals(signum).name}: stopping" in err
    assert "shutdown signal=" in log.read_text()  # the server got the signal and shut down
    assert not running(server)
    assert check(tmp_path).returncode == 1  # the ready file went with it


# -- captures between two namespaces -------------------------------------------------------------


def tcp_flags_to(pcap: Path, port: int) -> list[int]:
    flags = []
    with pcap.open("rb") as f:
        for _, buf in dpkt.pcap.Reader(f):
            ip = dpkt.ethernet.Ethernet(buf).data
            tcp = ip.data if isinstance(ip, dpkt.ip.IP) else None
            if isinstance(tcp, dpkt.tcp.TCP) and port in (tcp.dport, tcp.sport):
                flags.append(tcp.flags)
    return flags


def test_captures_hold_the_whole_conversation(
    two_namespaces: tuple[str, str], tmp_path: Path
) -> None:
    a, b = two_namespaces
    port = 9999
    server = program("fork_server", "--host", "0.0.0.0", "--port", str(port))
    server_argv = ["ip", "netns", "exec", a, *SUPERVISE, "--node", "a", "--capture"]
    server_argv += ["--results", str(tmp_path), "--ready-file", str(tmp_path / "ready-a")]
    server_argv += ["--listen", f"tcp:{port}", "--", *job_words("serve", "fork", server)]
    proc = subprocess.Popen(server_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (tmp_path / "ready-a").exists(), "the server node to be ready")
        client = program("client", "--host", "10.99.7.1", "--port", str(port), "--send", "hi")
        client_argv = ["ip", "netns", "exec", b, *SUPERVISE, "--node", "b", "--capture"]
        client_argv += ["--results", str(tmp_path), "--ready-file", str(tmp_path / "ready-b")]
        client_argv += ["--filter=tcp", "--", *job_words("client", "hi", client)]
        done = subprocess.run(client_argv, capture_output=True, text=True, timeout=EVENT_TIMEOUT)
        assert done.returncode == 0, done.stderr
        assert "hi| HI" in done.stdout
    finally:
        stop_node(proc)
    assert proc.returncode == 0
    for node in ("a", "b"):
        (pcap,) = (tmp_path / node).glob("*.pcap")
        flags = tcp_flags_to(pcap, port)
        syn, fin, ack = dpkt.tcp.TH_SYN, dpkt.tcp.TH_FIN, dpkt.tcp.TH_ACK
        # The handshake opens the capture; the close's two FINs and the last ACK end it.
        assert flags[0] == syn, (node, flags)
        assert [f for f in flags if f & fin], (node, flags)
        assert len([f for f in flags if f & fin]) == 2, (node, flags)
        assert flags[-1] == ack, (node, flags)
        interfaces = (tmp_path / node / "interfaces.json").read_text()
        assert pcap.stem in interfaces


def test_a_capped_log_keeps_whole_lines_up_to_its_cap_and_shows_no_more(tmp_path: Path) -> None:
    from lab.programs.supervise_children import LogFile, pump

    log = LogFile(tmp_path / "user.log", cap=10)
    read, write = os.pipe()
    shown_r, shown_w = os.pipe()
    with os.fdopen(write, "wb") as out:
        out.write(b"1234\n5678\nabcdef\nxy\n")
    thread = pump(os.fdopen(read, "rb"), shown_w, b"p| ", log)
    thread.join(timeout=EVENT_TIMEOUT)
    os.close(shown_w)
    with os.fdopen(shown_r, "rb") as shown:
        assert shown.read() == b"p| 1234\np| 5678\n"
    assert (tmp_path / "user.log").read_bytes() == b"1234\n5678\n"
    assert log.truncated
