"""The start barrier of a scenario's clients, on real backends: a client whose exec starts
late (held back here on purpose, by a backend class of the test's own) still holds its
connections together with the other client's, and the "during" snapshot shows both; a
client that never becomes ready stops the scenario with a message naming it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import pytest

import lab.run.clients
from lab.report.summary import finish_run
from lab.run.backends.base import Arrival, Backend, Completed
from lab.run.backends.docker import DockerBackend
from lab.run.backends.netns import NetnsBackend
from lab.run.backends.ssh.backend import SshBackend
from lab.run.record import load_run
from lab.run.runner import run_lab
from lab.spec.topology import load_topology
from tests.ssh.hosts import ssh_hosts

__all__ = ["ssh_hosts"]  # the ssh tier's fixture, for the ssh case

PORT = 9999
CLIENTS = {"client1": "10.77.1.11", "client2": "10.77.1.12"}
CONCURRENCY = 3

TOPOLOGY = """\
name: barrier
networks:
  lan: {{subnet: 10.77.1.0/24}}
nodes:
  server:
    interfaces: {{lan: 10.77.1.10}}
  client1:
    interfaces: {{lan: 10.77.1.11}}
  client2:
    interfaces: {{lan: 10.77.1.12}}
services:
  fork: {{node: server, program: fork_server, port: {port}}}
scenarios:
  - name: fork-echo
    service: fork
    clients: [client1, client2]
    send: [hi]
    expect: [HI]
    concurrency: {concurrency}
    hold: {hold}
"""


def late_start(base: type[Backend], node: str, delay: float) -> type[Backend]:
    """``base`` whose line clients on ``node`` start ``delay`` seconds late: the test's
    stand-in for an exec that a loaded machine starts late. Gated or not, so that the
    same test shows what happens without the barrier."""

    def late(n: str, argv: Sequence[str]) -> None:
        if n == node and "lab.programs.client" in argv:
            time.sleep(delay)

    def run(
        self: Backend,
        n: str,
        argv: Sequence[str],
        *,
        timeout: float = 30.0,
        input: str | None = None,
    ) -> Completed:
        late(n, argv)
        return base.run(self, n, argv, timeout=timeout, input=input)

    def run_gated(
        self: Backend, n: str, argv: Sequence[str], *, timeout: float, arrival: Arrival
    ) -> Completed:
        late(n, argv)
        return base.run_gated(self, n, argv, timeout=timeout, arrival=arrival)

    methods = {"run": run, "run_gated": run_gated}
    return cast(type[Backend], type(f"Late{base.__name__}", (base,), methods))


def topology_file(tmp_path: Path, hold: float) -> Path:
    path = tmp_path / "barrier.yaml"
    path.write_text(TOPOLOGY.format(port=PORT, concurrency=CONCURRENCY, hold=hold))
    return path


def held_during(out: Path) -> dict[str, int]:
    """ESTABLISHED connections to the server's port in its "during" snapshot, by client."""
    counts = dict.fromkeys(CLIENTS, 0)
    for line in (out / "server" / "snapshots" / "during.ss.txt").read_text().splitlines():
        cols = line.split()
        if len(cols) < 5 or cols[0] != "ESTAB" or not cols[3].endswith(f":{PORT}"):
            continue
        for node, address in CLIENTS.items():
            if cols[4].startswith(f"{address}:"):
                counts[node] += 1
    return counts


def run_late(backend: type[Backend], tmp_path: Path, hold: float, delay: float) -> Path:
    """The lab with client2 started ``delay`` s late; its results folder, which passed."""
    source = topology_file(tmp_path, hold)
    out = tmp_path / "out"
    lines: list[str] = []
    run_lab(
        load_topology(source), late_start(backend, "client2", delay), out, progress=lines.append
    )
    summary = finish_run(out, load_topology(source))
    failed = [
        (sc.name, c.name, c.detail) for sc in summary.scenarios for c in sc.checks if not c.passed
    ]
    assert summary.passed, (failed, lines)
    return out


# The delay outlasts the hold and the wait for held connections (max(hold, 5) s): without
# the barrier, client1's connections have closed before client2's open.
@pytest.mark.slow
def test_a_late_client_still_holds_with_the_other_on_netns(root: None, tmp_path: Path) -> None:
    out = run_late(NetnsBackend, tmp_path, hold=2, delay=8)
    assert held_during(out) == dict.fromkeys(CLIENTS, CONCURRENCY)


@pytest.mark.slow
def test_a_late_client_still_holds_with_the_other_on_docker(
    docker_engine: None, tmp_path: Path
) -> None:
    out = run_late(DockerBackend, tmp_path, hold=3, delay=9)
    assert held_during(out) == dict.fromkeys(CLIENTS, CONCURRENCY)


@pytest.mark.slow
def test_a_late_client_still_holds_with_the_other_over_ssh(
    ssh_hosts: type[SshBackend], tmp_path: Path
) -> None:
    # Held 6 s: every command over SSH starts a login shell (see tests/ssh/test_ssh.py).
    out = run_late(ssh_hosts, tmp_path, hold=6, delay=12)
    assert held_during(out) == dict.fromkeys(CLIENTS, CONCURRENCY)


@pytest.mark.slow
def test_a_client_that_never_starts_stops_the_scenario_naming_it(
    root: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lab.run.clients, "BARRIER_TIMEOUT", 2.0)
    source = topology_file(tmp_path, hold=2)
    out = tmp_path / "out"
    lines: list[str] = []
    late = late_start(NetnsBackend, "client2", 6)
    record = run_lab(load_topology(source), late, out, progress=lines.append)
    said = "start barrier of fork-echo: client client2 did not start within 2 s"
    assert any(said in line for line in lines), lines
    clients = load_run(out).scenarios["fork-echo"].clients
    for node in CLIENTS:  # the late one too: told as it arrives, it connects nowhere
        assert clients[node].returncode == 3, clients[node]
        assert clients[node].result is None
        assert said in (clients[node].error or ""), clients[node]
    assert held_during(out) == dict.fromkeys(CLIENTS, 0)
    assert record.error is None  # the run itself went on to its end and was torn down
    assert not finish_run(out, load_topology(source)).passed
