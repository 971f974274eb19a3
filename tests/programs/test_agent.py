"""The node agent (lab.programs.agent) as the docker backend drives it, here over pipes:
answers by id in the order commands end, stdin given, timeouts stopping the whole group,
a command that cannot start, a request that is not one, and the end of stdin."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.run.backends.base import Owner, process_start
from tests.labcli import ROOT
from tests.programs.conftest import read, running, wait_until


class Agent:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-m", "lab.programs.agent"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )

    def send(self, **request: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()

    def reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the agent ended"
        return dict(json.loads(line))

    def end(self, timeout: float) -> int:
        """Close the agent's stdin, as the lab does when it is done; its exit status."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def agent() -> Iterator[Agent]:
    made = Agent()
    yield made
    if made.proc.poll() is None:
        made.proc.kill()
    made.proc.wait()


def test_a_command_gives_its_status_output_and_errors(agent: Agent) -> None:
    agent.send(id=1, argv=["sh", "-c", "echo out; echo err >&2; exit 3"], input=None, timeout=10)
    assert agent.reply() == {"id": 1, "rc": 3, "out": "out\n", "err": "err\n"}
    agent.send(id=2, argv=["sh", "-c", "tr a-z A-Z"], input="hello\n", timeout=10)
    assert agent.reply() == {"id": 2, "rc": 0, "out": "HELLO\n", "err": ""}


def test_answers_come_as_commands_end_each_with_its_id(agent: Agent) -> None:
    agent.send(id=7, argv=["sh", "-c", "sleep 1; echo slow"], input=None, timeout=10)
    agent.send(id=8, argv=["echo", "quick"], input=None, timeout=10)
    first, second = agent.reply(), agent.reply()
    assert (first["id"], first["out"]) == (8, "quick\n")
    assert (second["id"], second["out"]) == (7, "slow\n")


def test_a_command_past_its_timeout_is_stopped_with_its_children(
    agent: Agent, tmp_path: Path
) -> None:
    statfile = tmp_path / "child"
    # The child's copy of its /proc stat, pid and start time, made while it surely runs.
    script = f"sleep 300 & cat /proc/$!/stat > {statfile}; wait"
    # 5 s: time on a loaded machine for the shell to start both before the timeout.
    agent.send(id=3, argv=["sh", "-c", script], input=None, timeout=5)
    assert agent.reply() == {"id": 3, "timeout": True}
    child = recorded(statfile)
    assert child is not None, f"the shell wrote no stat of its child to {statfile}"
    deadline = time.monotonic() + 5
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.05)  # the kill is sent; the kernel may take a moment to reap
    assert not running(child)


def test_a_signal_is_128_plus_its_number_and_a_missing_program_an_error(agent: Agent) -> None:
    agent.send(id=4, argv=["sh", "-c", "kill -9 $$"], input=None, timeout=10)
    assert agent.reply()["rc"] == 137
    agent.send(id=5, argv=["/nonexistent/prog"], input=None, timeout=10)
    reply = agent.reply()
    assert reply["id"] == 5 and "/nonexistent/prog" in reply["error"]


def test_a_bad_request_is_answered_and_the_agent_goes_on(agent: Agent) -> None:
    assert agent.proc.stdin is not None
    agent.proc.stdin.write(b'not json\n{"id": 1}\n')
    agent.proc.stdin.flush()
    assert agent.reply()["id"] is None
    assert agent.reply()["id"] is None
    agent.send(id=6, argv=["true"], input=None, timeout=10)
    assert agent.reply() == {"id": 6, "rc": 0, "out": "", "err": ""}


def test_the_end_of_stdin_ends_the_agent_and_its_commands(agent: Agent, tmp_path: Path) -> None:
    pidfile = tmp_path / "long"
    agent.send(id=9, argv=["sh", "-c", f"echo $$ > {pidfile}; exec sleep 300"], input=None,
               timeout=600)  # fmt: skip
    wait_until(lambda: bool(read(pidfile)), f"the command's pid in {pidfile}")
    pid = int(read(pidfile))
    # The pid with its start time: the suite makes processes by the thousand, and once the
    # command is gone the kernel may give its pid to another (pid_max is 32768 here).
    command = Owner(pid, process_start(pid))
    assert command.start is not None, f"the command (pid {pid}) ended before the end of stdin"
    assert agent.end(timeout=10) == 0
    deadline = time.monotonic() + 5
    while running(command) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(command)


def test_commands_still_starting_at_the_end_of_stdin_are_ended_too(
    agent: Agent, tmp_path: Path
) -> None:
    """Requests and the end of stdin at once: a command whose start was under way when the
    agent read the end must not outlive it."""
    count = 20
    for i in range(count):
        # Each command writes down its own pid and start time (a copy of its /proc stat)
        # while it surely runs: the test cannot read them before the end of stdin without
        # waiting for the very starts the end must race with, nor after it, when a pid may
        # be another process's.
        script = f"cat /proc/$$/stat > {tmp_path / str(i)}; exec sleep 300"
        agent.send(id=i, argv=["sh", "-c", script], input=None, timeout=600)
    assert agent.end(timeout=20) == 0
    time.sleep(1.0)  # a command that escaped has written its stat by now
    commands = [c for c in map(recorded, tmp_path.iterdir()) if c is not None]
    left = [c.pid for c in commands if running(c)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == []


def recorded(path: Path) -> Owner | None:
    """The process whose copy of /proc/PID/stat ``path`` holds (None: the copy is empty or
    cut short, its command killed while making it)."""
    text = read(path)
    try:
        return Owner(int(text.split()[0]), int(text.rsplit(")", 1)[1].split()[19]))
    except (IndexError, ValueError):
        return None


def ended(agent: Agent, ident: int, pid: int) -> dict[str, Any]:
    """The agent's status of ``pid`` once it no longer runs (or after 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        agent.send(id=ident, status=pid)
        told = agent.reply()
        if not told["running"] or time.monotonic() > deadline:
            return told
        time.sleep(0.02)


def test_a_spawned_process_runs_on_into_its_log_and_its_end_is_told(
    agent: Agent, tmp_path: Path
) -> None:
    log = tmp_path / "svc.log"
    agent.send(id=1, spawn=["sh", "-c", "echo out; echo err >&2; sleep 1; exit 4"], log=str(log))
    started = agent.reply()
    assert started["id"] == 1 and isinstance(started["pid"], int)
    pid = started["pid"]
    os.kill(pid, 0)  # started, and the answer did not wait for its end
    agent.send(id=2, status=pid)
    assert agent.reply() == {"id": 2, "running": True, "rc": None}
    assert ended(agent, 3, pid) == {"id": 3, "running": False, "rc": 4}
    assert log.read_text().splitlines() == ["out", "err"]


def test_a_spawned_process_killed_by_a_signal_is_128_plus_n_and_outlives_the_agent(
    agent: Agent, tmp_path: Path
) -> None:
    agent.send(id=1, spawn=["sleep", "300"], log=str(tmp_path / "sleep.log"))
    pid = agent.reply()["pid"]
    assert os.getsid(pid) == pid  # a session of its own: the lab's signals reach it alone
    agent.send(id=2, spawn=["/nonexistent/prog"], log=str(tmp_path / "none.log"))
    assert "/nonexistent/prog" in agent.reply()["error"]
    agent.send(id=3, status=12345678)
    assert "no process 12345678" in agent.reply()["error"]
    os.kill(pid, signal.SIGTERM)
    assert ended(agent, 4, pid) == {"id": 4, "running": False, "rc": 128 + signal.SIGTERM}
    agent.send(id=5, spawn=["sleep", "300"], log=str(tmp_path / "sleep2.log"))
    other = agent.reply()["pid"]
    assert agent.end(timeout=10) == 0
    try:
        os.kill(other, 0)  # still running: the lab stops what it started, not the agent
    finally:
        os.kill(other, signal.SIGKILL)
