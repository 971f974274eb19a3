"""Fixtures for the programs' tests: real server subprocesses on loopback, on free ports."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lab.run.backends.base import Owner
from tests.conftest import require
from tests.programs.c_build import build_all, compilers_present

HOST = "127.0.0.1"
# Upper bound for waiting on an event the test expects; never a speed assertion.
EVENT_TIMEOUT = 20.0
LISTENING_RE = re.compile(r"^listening (tcp|udp) [\d.]+:(\d+) pid=(\d+)")


def program(name: str) -> list[str]:
    return [sys.executable, "-m", f"lab.programs.{name}"]


@dataclass
class Server:
    """A server subprocess; its stderr lines are collected as they arrive."""

    proc: subprocess.Popen[str]
    port: int = 0
    lines: list[str] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _collect(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<EOF>")
            self._cond.notify_all()

    def wait_for(self, pattern: str, count: int = 1) -> list[str]:
        """Block until ``count`` log lines match ``pattern`` (a regex searched in each
        line); fail if the log ends or EVENT_TIMEOUT passes first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + EVENT_TIMEOUT
        with self._cond:
            while True:
                found = [line for line in self.lines if regex.search(line)]
                if len(found) >= count:
                    return found
                if "<EOF>" in self.lines:
                    pytest.fail(f"log ended without {count} x {pattern!r}: {self.lines}")
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {count} x {pattern!r} in log: {self.lines[-20:]}")
                self._cond.wait(left)

    def matching(self, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        with self._cond:
            return [line for line in self.lines if regex.search(line)]

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal the server and wait for its exit and for the end of its log: the
        process can be gone while its last lines are still in the pipe, unread."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        code = self.proc.wait(EVENT_TIMEOUT)
        with self._cond:
            self._cond.wait_for(lambda: "<EOF>" in self.lines, EVENT_TIMEOUT)
        return code


def launch(
    argv: list[str],
    servers: list[Server],
    *,
    wait: bool,
    preexec_fn: Callable[[], None] | None = None,
) -> Server:
    """Start a server whose log is its stderr; with ``wait``, block until its "listening"
    line and take the port from it."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        preexec_fn=preexec_fn,
    )
    server = Server(proc)
    servers.append(server)
    threading.Thread(target=server._collect, daemon=True).start()
    if wait:
        match = LISTENING_RE.match(server.wait_for(r"^listening ")[0])
        assert match is not None and int(match.group(3)) == proc.pid
        server.port = int(match.group(2))
    return server


def stop_all(servers: list[Server]) -> None:
    """SIGTERM to every server still running, SIGKILL to one that outlives 10 s."""
    for server in servers:
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.wait(10)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(10)


ServerFactory = Callable[..., Server]


@pytest.fixture
def start_server() -> Iterator[ServerFactory]:
    """start_server("fork_server", "--no-reap") -> a running Server on a free port."""
    servers: list[Server] = []

    def start(
        name: str,
        *args: str,
        port: int = 0,
        wait: bool = True,
        preexec_fn: Callable[[], None] | None = None,
    ) -> Server:
        argv = program(name)
        if name == "udp_echo":
            argv.append("server")
        argv += ["--host", HOST, "--port", str(port), *args]
        return launch(argv, servers, wait=wait, preexec_fn=preexec_fn)

    yield start
    stop_all(servers)


def run_client(
    port: int, *args: str, name: str = "client", stdin: str | None = None
) -> tuple[int, dict[str, Any]]:
    """Run the line client with --json; (exit status, parsed JSON)."""
    argv = program(name)
    if name == "udp_echo":
        argv.append("client")
    argv += ["--host", HOST, "--port", str(port), "--json", *args]
    done = subprocess.run(
        argv, input=stdin or "", capture_output=True, text=True, encoding="utf-8", timeout=60
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 1, (done.stdout, done.stderr)
    doc: dict[str, Any] = json.loads(lines[0])
    return done.returncode, doc


def read(path: Path) -> str:
    """A file's text, stripped; "" while it does not exist (a process has yet to write it)."""
    return path.read_text().strip() if path.exists() else ""


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, ppid) of a process from /proc, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def running(process: Owner) -> bool:
    """The process, known by pid and start time, exists and is not a zombie."""
    stat = proc_stat(process.pid)
    return process.alive() and stat is not None and stat[0] != "Z"


def children_of(pid: int) -> dict[int, str]:
    """Every process whose parent is ``pid``, with its state letter (Z = zombie)."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None and stat[1] == pid:
                found[int(entry)] = stat[0]
    return found


def wait_until(condition: Callable[[], bool], what: str, timeout: float = EVENT_TIMEOUT) -> None:
    """Poll a condition the test expects to become true (e.g. children turning into
    zombies, which leaves no log line); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(scope="session")
def c_programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """lab/programs/c/ built once per session with the real compilers (warnings are errors):
    name -> executable; the spot-the-bug variants as ``bug_NAME``."""
    require(compilers_present(), "needs cc and c++ (gcc, g++: run .ci/setup)")
    return build_all(tmp_path_factory.mktemp("c-programs"))


CServerFactory = Callable[..., Server]


@pytest.fixture
def start_c(c_programs: dict[str, Path]) -> Iterator[CServerFactory]:
    """start_c("fork_server") -> a running C server on a free loopback port (the port as
    its first argument, 0 = the kernel picks one, read back from its "listening" line)."""
    servers: list[Server] = []

    def start(name: str, *args: str, wait: bool = True) -> Server:
        argv = [str(c_programs[name]), "0", "--host", HOST, *args]
        return launch(argv, servers, wait=wait)

    yield start
    stop_all(servers)
