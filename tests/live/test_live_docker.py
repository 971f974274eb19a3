"""The live lab's walkthrough on Docker: ``lab up``, a shell on client1 (an interactive
``docker exec``), ``nc`` to the fork server by hand, the node image's hand tools, ``lab
exec`` exit codes, ``lab capture`` read back with tshark, ``lab snapshot``, ``lab scenario``,
``lab down`` and the report."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.labcli import ROOT, lab
from tests.live.conftest import kill_supervisor
from tests.live.terminal import Terminal, up_at_terminal

DEFAULT = "lab/data/topologies/default.yaml"
SERVER = "10.77.1.10"


def containers(run_id: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True
    ).stdout
    return [n for n in out.split() if f"-{run_id}-" in n]


@pytest.mark.slow
def test_walkthrough_on_docker(tmp_path: Path, docker_env: dict[str, str]) -> None:
    env = docker_env
    up_at_terminal(DEFAULT, "--backend", "docker", "--out", str(tmp_path / "out"), env=env)
    state = json.loads(next((tmp_path / "state" / "live").glob("*.json")).read_text())
    rid = state["run_id"]
    assert len(containers(rid)) == 3

    pcap = tmp_path / "server.pcap"
    capture = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "capture", "server", "-w", str(pcap)],
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    shell = Terminal("shell", "client1", env=env)
    try:
        assert capture.stderr is not None
        assert b"listening on" in capture.stderr.readline()
        shell.expect("[default:client1]")
        shell.send(f"nc {SERVER} 9999\n")
        time.sleep(0.5)  # let nc connect before typing (the reply proves it did)
        shell.send("hello docker\n")
        shell.expect("HELLO DOCKER")
        netstat = lab("exec", "client1", "--", "netstat", "-tn", env=env)
        row = next(r for r in netstat.stdout.splitlines() if f"{SERVER}:9999" in r)
        assert "ESTABLISHED" in row
        client_port = row.split()[3].rsplit(":", 1)[1]
        assert lab("snapshot", "held", env=env).returncode == 0
        shell.send("\x03")  # Ctrl-C ends nc; the shell stays, the lab too
        shell.expect("[default:client1]")
        for tool in ("telnet", "socat", "strace", "tcpdump", "ss", "ps"):
            shell.send(f"command -v {tool} >/dev/null && echo has-$((1+1))-{tool}\n")
            shell.expect(f"has-2-{tool}")  # the shell's arithmetic: not the typed echo
        shell.expect("[default:client1]")
        shell.send("exit 0\n")
        assert shell.wait() == 0
    finally:
        shell.close()
        capture.send_signal(signal.SIGINT)
        capture.wait(timeout=10)
    assert lab("exec", "server", "--", "sh", "-c", "exit 7", env=env).returncode == 7
    read = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", f"tcp.srcport=={client_port} && tcp.flags.syn==1"],
        capture_output=True,
        text=True,
    )
    assert read.returncode == 0 and len(read.stdout.splitlines()) == 1, read.stdout
    ran = lab("scenario", "fork-echo", env=env)  # one of the file's scenarios, with its checks
    assert ran.returncode == 0, ran.stdout + ran.stderr

    started = time.monotonic()
    down = lab("down", env=env)
    assert down.returncode == 0, down.stdout + down.stderr
    print(f"lab down: {time.monotonic() - started:.1f} s")
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    conn = next(c for c in summary["connections"] if str(c["client"]["port"]) == client_port)
    assert conn["handshake"]["ok"] and conn["server"]["port"] == 9999
    assert client_port in (out / "report.html").read_text()
    assert [(s["name"], s["passed"]) for s in summary["scenarios"]] == [("fork-echo", True)]
    held = (out / "client1" / "snapshots" / "held.netstat.txt").read_text()
    assert re.search(rf"{SERVER}:9999\s+ESTABLISHED", held)
    assert containers(rid) == []


@pytest.mark.slow
def test_two_labs_a_stale_one_and_a_killed_shell_on_docker(
    tmp_path: Path, docker_env: dict[str, str]
) -> None:
    env = docker_env
    for out in ("one", "two"):
        started = lab("up", DEFAULT, "--backend", "docker", "--out", str(tmp_path / out), env=env)
        assert started.returncode == 0, started.stderr
    states = {
        s["name"]: s
        for s in (json.loads(p.read_text()) for p in (tmp_path / "state" / "live").glob("*.json"))
    }
    assert set(states) == {"default", "default-2"}
    for name in states:
        reply = lab("exec", name, "client2", "--", "python3", "-c", _CLIENT, env=env)
        assert reply.stdout == "B\n", reply.stderr

    shell = Terminal("shell", "default", "server", env=env)
    try:
        shell.expect("[default:server]")
        os.kill(shell.proc.pid, signal.SIGKILL)
        assert shell.proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        shell.close()
    assert lab("exec", "default", "server", "--", "true", env=env).returncode == 0

    # At a terminal, Ctrl-C stops the command in the container, not only `docker exec`.
    sleeper = Terminal(
        "exec", "default", "client1", "--", "sh", "-c", "echo up; sleep 600", env=env
    )
    try:
        sleeper.expect("up")
        sleeper.send("\x03")
        assert sleeper.wait() == 130
    finally:
        sleeper.close()
    ps = lab("exec", "default", "client1", "--", "ps", "-e", "-o", "args=", env=env)
    assert "sleep 600" not in ps.stdout

    stale = states["default-2"]
    kill_supervisor(stale)
    refused = lab("exec", "default-2", "server", "--", "true", env=env)
    assert refused.returncode == 1 and "stale" in refused.stderr
    down = lab("down", "default-2", env=env)
    assert down.returncode == 1 and "stale" in down.stderr
    assert containers(stale["run_id"]) == []
    assert (tmp_path / "two" / "summary.json").is_file()
    assert len(containers(states["default"]["run_id"])) == 3  # the other lab untouched
    assert lab("down", env=env).returncode == 0
    assert containers(states["default"]["run_id"]) == []


_CLIENT = (
    "import socket; s = socket.create_connection(('10.77.1.10', 9999)); "
    "s.sendall(b'b\\n'); print(s.recv(64).decode(), end='')"
)
