"""The live lab on the ssh backend, against real sshd hosts (network namespaces with their
own sshd, see tests/ssh/hosts.py): ``lab up``, a shell on client1 over an interactive
channel, ``nc`` to the fork server by hand, ``lab exec`` exit codes and stdin,
``lab capture`` read back with tshark, ``lab snapshot``, ``lab scenario``, ``lab down`` and
the report; two labs at once; a lab whose supervisor was killed; a shell killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.labcli import ROOT, lab
from tests.live.conftest import SshLab, kill_supervisor
from tests.live.terminal import Terminal, up_at_terminal
from tests.ssh.hosts import run_processes
from tests.ssh.test_ssh import DEFAULT, assert_nothing_left

SERVER = "10.77.1.10"

pytestmark = [pytest.mark.ssh, pytest.mark.slow]


def test_walkthrough_over_ssh(ssh_lab: Callable[[Path], SshLab], tmp_path: Path) -> None:
    live = ssh_lab(DEFAULT)
    env = live.env
    out = tmp_path / "out"
    up_at_terminal(*live.up_args(out), env=env, timeout=120)
    state = live.state()
    try:
        pcap = tmp_path / "server.pcap"
        capture = subprocess.Popen(
            [sys.executable, "-m", "lab.cli", "capture", "server", "-w", str(pcap)],
            stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, **env},
        )  # fmt: skip
        shell = Terminal("shell", "client1", env=env)
        try:
            assert capture.stderr is not None
            assert b"listening on" in capture.stderr.readline()
            shell.expect("[default:client1]", timeout=60)
            shell.send(f"nc {SERVER} 9999\n")
            time.sleep(1.0)  # let nc connect before typing (the reply proves it did)
            shell.send("hello ssh\n")
            shell.expect("HELLO SSH", timeout=60)
            netstat = lab("exec", "client1", "--", "netstat", "-tn", env=env)
            row = next(r for r in netstat.stdout.splitlines() if f"{SERVER}:9999" in r)
            assert "ESTABLISHED" in row
            client_port = row.split()[3].rsplit(":", 1)[1]
            assert lab("snapshot", "held", env=env).returncode == 0
            shell.send("\x03")  # Ctrl-C reaches nc on the host through the channel's pty
            shell.expect("[default:client1]", timeout=60)
            shell.send("exit 0\n")
            assert shell.wait(60) == 0
        finally:
            shell.close()
            capture.send_signal(signal.SIGINT)
            capture.wait(timeout=30)
        assert lab("exec", "server", "--", "sh", "-c", "exit 7", env=env).returncode == 7
        echoed = subprocess.run(
            [sys.executable, "-m", "lab.cli", "exec", "client1", "--", "tr", "a-z", "A-Z"],
            input="piped\n", capture_output=True, text=True, cwd=ROOT,
            env={**os.environ, **env},
        )  # fmt: skip
        assert (echoed.returncode, echoed.stdout) == (0, "PIPED\n"), echoed.stderr
        read = subprocess.run(
            ["tshark", "-r", str(pcap), "-Y", f"tcp.srcport=={client_port} && tcp.flags.syn==1"],
            capture_output=True,
            text=True,
        )
        assert len(read.stdout.splitlines()) == 1, read.stdout + read.stderr
        ran = lab("scenario", "fork-echo", env=env)  # a scenario of the file, with its checks
        assert ran.returncode == 0, ran.stdout + ran.stderr
        down = lab("down", env=env)
        assert down.returncode == 0, down.stdout + down.stderr
    finally:
        lab("down", env=env)
    summary = json.loads((out / "summary.json").read_text())
    conn = next(c for c in summary["connections"] if str(c["client"]["port"]) == client_port)
    assert conn["handshake"]["ok"] and conn["server"]["port"] == 9999
    assert [(s["name"], s["passed"]) for s in summary["scenarios"]] == [("fork-echo", True)]
    assert (out / "client1" / "snapshots" / "held.netstat.txt").is_file()
    assert_nothing_left(str(state["run_id"]))


def test_stale_lab_and_killed_shell_over_ssh(
    ssh_lab: Callable[[Path], SshLab], tmp_path: Path
) -> None:
    live = ssh_lab(DEFAULT)
    env = live.env
    out = tmp_path / "out"
    started = lab("up", *live.up_args(out), env=env)
    assert started.returncode == 0, started.stderr
    state = live.state()
    try:
        shell = Terminal("shell", "server", env=env)
        try:
            shell.expect("[default:server]", timeout=60)
            os.kill(shell.proc.pid, signal.SIGKILL)
            assert shell.proc.wait(timeout=10) == -signal.SIGKILL
        finally:
            shell.close()
        alive = lab("exec", "server", "--", "ss", "-Hltn", "sport", "=", ":9999", env=env)
        assert alive.returncode == 0 and "LISTEN" in alive.stdout, alive.stderr
        kill_supervisor(state)
        down = lab("down", env=env)
        assert down.returncode == 1 and "stale" in down.stderr, down.stdout + down.stderr
    finally:
        lab("down", env=env)
    assert (out / "summary.json").is_file() and (out / "server" / "eth0.pcap").is_file()
    assert_nothing_left(str(state["run_id"]))


def test_two_labs_at_once_over_ssh(ssh_lab: Callable[[Path], SshLab], tmp_path: Path) -> None:
    labs = [ssh_lab(DEFAULT), ssh_lab(DEFAULT)]  # each on hosts of its own
    env = labs[0].env  # one registry holds both
    registry = Path(env["SOCKET_LAB_STATE"], "live")
    try:
        for live, out in zip(labs, ("one", "two"), strict=True):
            started = lab("up", *live.up_args(tmp_path / out), env=env)
            assert started.returncode == 0, started.stdout + started.stderr
        states = [json.loads(p.read_text()) for p in registry.glob("*.json")]
        first, second = sorted(states, key=lambda s: str(s["out"]))  # "one", "two"
        assert (first["name"], second["name"]) == ("default", "default-2")
        vague = lab("exec", "client1", "--", "true", env=env)
        assert vague.returncode == 2 and "name one" in vague.stderr
        listed = lab("ls", env=env).stdout
        assert "live lab default," in listed and "live lab default-2," in listed
        # The same lab address answers in each lab, and each lab's command reaches its own
        # machine: the one whose management address its hosts were given.
        for live, which in zip(labs, ("default", str(second["run_id"])), strict=True):
            reply = lab(
                "exec", which, "client1", "--", "sh", "-c",
                f"echo a | nc -q1 {SERVER} 9999; ip -4 -o addr show dev mgmt0", env=env,
            )  # fmt: skip
            assert reply.stdout.startswith("A\n"), reply.stdout + reply.stderr
            assert f" {live.world.hosts['client1'].address}/30 " in reply.stdout
        assert lab("down", "default-2", env=env).returncode == 0
        assert_nothing_left(str(second["run_id"]))
        alive = lab("exec", "server", "--", "ss", "-Hltn", "sport", "=", ":9999", env=env)
        assert "LISTEN" in alive.stdout, alive.stderr  # now the only one, still serving
        assert run_processes(str(first["run_id"])) != []
        assert lab("down", env=env).returncode == 0
    finally:
        for path in registry.glob("*.json"):
            lab("down", path.stem, env=env)
    assert_nothing_left(str(first["run_id"]))
    assert (tmp_path / "one" / "summary.json").is_file()
    assert (tmp_path / "two" / "summary.json").is_file()
