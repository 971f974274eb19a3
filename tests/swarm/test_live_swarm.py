"""The live lab on a real two-engine swarm (tests/swarm/twoengines.py): ``lab up --backend
swarm`` spreads the nodes over both engines, and ``lab exec``, ``shell`` and ``capture`` reach
each node on its own engine, the second one over TCP with TLS; ``lab snapshot``, ``scenario``
and ``down`` go through the lab, and a lab whose supervisor was killed is taken down on every
engine of its file."""

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

import docker
import pytest

from lab.run.backends.docker.engine import NODE_LABEL, RUN_LABEL
from tests.labcli import ROOT, lab
from tests.live.terminal import Terminal
from tests.swarm.test_swarm import leftovers
from tests.swarm.twoengines import TwoEngines

DEFAULT = "lab/data/topologies/default.yaml"
SERVER = "10.77.1.10"
CLIENT = (
    "import socket; s = socket.create_connection(('10.77.1.10', 9999)); "
    "s.sendall(b'across\\n'); print(s.recv(64).decode(), end='')"
)


@pytest.fixture
def live(two_engines: TwoEngines, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A registry of the test's own; every lab still in it is taken down at the end."""
    env = {"SOCKET_LAB_STATE": str(tmp_path / "state")}
    yield env
    engines = str(two_engines.tls_engines_file(tmp_path))
    for path in (tmp_path / "state" / "live").glob("*.json"):
        lab("down", path.stem, env=env)
        lab("clean", "--run-id", path.stem, "--engines", engines, env=env)


def states(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    live = Path(env["SOCKET_LAB_STATE"], "live")
    return {s["name"]: s for s in (json.loads(p.read_text()) for p in live.glob("*.json"))}


def up(engines: Path, out: Path, env: dict[str, str]) -> dict[str, Any]:
    """``lab up`` of the default topology on the swarm of ``engines``; its state file."""
    done = lab("up", DEFAULT, "--backend", "swarm", "--engines", str(engines),
               "--out", str(out), env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return states(env)["default"]


def engine_of(clients: dict[str, docker.DockerClient], run_id: str) -> dict[str, str]:
    """Each node of the run, by the engine whose container list holds it."""
    found = {}
    for engine, c in clients.items():
        for x in c.api.containers(filters={"label": f"{RUN_LABEL}={run_id}"}):
            found[x["Labels"][NODE_LABEL]] = engine
    return found


@pytest.mark.slow
def test_live_walkthrough_across_two_engines(
    two_engines: TwoEngines,
    clients: dict[str, docker.DockerClient],
    live: dict[str, str],
    tmp_path: Path,
) -> None:
    env = live
    engines = two_engines.tls_engines_file(tmp_path)
    out = tmp_path / "out"
    state = up(engines, out, env)
    rid = state["run_id"]
    where = engine_of(clients, rid)
    assert set(where.values()) == {two_engines.manager_host, two_engines.worker_host}, where
    assert state["engines"] == str(engines.resolve())
    for node in state["nodes"]:  # the docker command's options reach the node's own engine
        tcp = two_engines.worker_tcp in node["engine"]
        assert tcp == (where[node["name"]] == two_engines.worker_host), (node, where)
        said = lab("exec", node["name"], "--", "cat", "/etc/hostname", env=env)
        assert said.returncode == 0 and said.stdout.strip(), said.stderr

    pcap = tmp_path / "server.pcap"
    capture = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "capture", "server", "-w", str(pcap)],
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    try:
        assert capture.stderr is not None
        assert b"listening on" in capture.stderr.readline()
        reply = lab("exec", "client2", "--", "python3", "-c", CLIENT, env=env)
        assert reply.stdout == "ACROSS\n", reply.stderr
    finally:
        capture.send_signal(signal.SIGINT)
        capture.wait(timeout=20)
    syn = "tcp.flags.syn==1 && tcp.dstport==9999"
    read = subprocess.run(["tshark", "-r", str(pcap), "-Y", syn], capture_output=True, text=True)
    assert read.returncode == 0 and len(read.stdout.splitlines()) == 1, read.stdout

    shell = Terminal("shell", "client1", env=env)  # a terminal through the docker command
    try:
        shell.expect("[default:client1]")
        shell.send("echo tty-$((6*7)); tty\n")
        shell.expect("tty-42")
        shell.expect("/dev/pts/")
        shell.send("exit 3\n")
        assert shell.wait() == 3
    finally:
        shell.close()
    assert lab("exec", "server", "--", "sh", "-c", "exit 7", env=env).returncode == 7
    assert lab("snapshot", "held", env=env).returncode == 0
    ran = lab("scenario", "fork-echo", env=env, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr

    down = lab("down", env=env, timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [(s["name"], s["passed"]) for s in summary["scenarios"]] == [("fork-echo", True)]
    assert (out / "server" / "snapshots" / "held.netstat.txt").is_file()
    assert leftovers(clients, rid) == []


@pytest.mark.slow
def test_a_stale_swarm_lab_is_taken_down_on_every_engine(
    two_engines: TwoEngines,
    clients: dict[str, docker.DockerClient],
    live: dict[str, str],
    tmp_path: Path,
) -> None:
    """The supervisor killed: ``lab down`` finds the engines in the lab's own state (no
    ``--engines`` given), collects what the nodes hold and removes them on both engines."""
    env = live
    out = tmp_path / "stale"
    state = up(two_engines.engines_file(tmp_path), out, env)
    rid = state["run_id"]
    assert len(set(engine_of(clients, rid).values())) == 2
    os.kill(int(state["pid"]), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{state['pid']}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    refused = lab("exec", "server", "--", "true", env=env)
    assert refused.returncode == 1 and "stale" in refused.stderr
    down = lab("down", env=env, timeout=300)
    assert "stale" in down.stderr, down.stderr
    assert leftovers(clients, rid) == []
    assert (out / "summary.json").is_file()
    assert (out / "server" / "tcpdump-eth0.log").is_file() or any(out.glob("*/eth0.pcap"))
    assert states(env) == {}
