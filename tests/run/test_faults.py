"""Faults during `lab run`, made from outside the lab mid-scenario, on netns and Docker: a
client host killed, the server process killed, a client's link cut.

In each case the run ends by itself (the client's reply timeout bounds a client that lost
its link), exits 1 with one line on stderr naming what failed, keeps the evidence taken so
far, writes a summary.json whose failing check says which client or service failed and
why, and leaves nothing of the run behind (counted independently, tests/leftovers.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.labcli import ROOT
from tests.leftovers import leftovers_of, read_until, run_id_in, start_lab_run
from tests.run import inject

TOPOLOGY = Path(__file__).resolve().parent / "faults.yaml"
NODES = ("server", "client1", "client2")

Inject = Callable[[str, str], Any]
INJECT: dict[tuple[str, str], Inject] = {
    ("netns", "client host killed"): inject.netns_kill_node,
    ("netns", "server killed"): inject.netns_kill_server,
    ("netns", "link cut"): inject.netns_cut_link,
    ("docker", "client host killed"): inject.docker_kill_node,
    ("docker", "server killed"): inject.docker_kill_server,
    ("docker", "link cut"): inject.docker_cut_link,
}
TARGET = {"client host killed": "client1", "server killed": "server", "link cut": "client1"}


def run_with_fault(backend: str, fault: str, out: Path) -> tuple[int, str, dict[str, Any]]:
    """`lab run` of faults.yaml, the fault made while held connections are open (the
    "during" snapshot); the exit status, stderr and summary.json."""
    proc = start_lab_run(TOPOLOGY, out, ROOT, backend)
    try:
        seen = read_until(proc, "snapshot: during")
        INJECT[(backend, fault)](run_id_in(seen), TARGET[fault])
        _, rest = proc.communicate(timeout=240)  # a guard against a hang, not a timing
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    stderr = "".join(seen) + rest
    assert (out / "run.json").is_file(), stderr
    assert (out / "summary.json").is_file(), stderr
    return proc.returncode, stderr, json.loads((out / "summary.json").read_text())


def failing(summary: dict[str, Any]) -> dict[str, str]:
    return {
        c["name"]: c["detail"] for s in summary["scenarios"] for c in s["checks"] if not c["passed"]
    }


def assert_common(code: int, stderr: str, summary: dict[str, Any], out: Path, what: str) -> None:
    assert code == 1, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("lab: run failed: ") and what in last, stderr
    assert summary["passed"] is False
    assert summary["failed_step"] is None and summary["interrupted"] is None
    run = json.loads((out / "run.json").read_text())
    assert run["phases"] == ["before", "during", "after", "final"]
    for node in NODES:  # taken before the fault on every node
        for kind in ("netstat", "ss", "ps"):
            assert (out / node / "snapshots" / f"before.{kind}.txt").is_file(), (node, kind)
    for capture in run["captures"]:
        assert (out / capture["node"] / capture["file"]).is_file(), capture
    assert leftovers_of(out) == []


def check_client_host_killed(backend: str, tmp_path: Path) -> None:
    out = tmp_path / "host"
    code, stderr, summary = run_with_fault(backend, "client host killed", out)
    assert_common(code, stderr, summary, out, "client1")
    replies = failing(summary)["replies"]
    assert "client1: no client result" in replies
    why = "killed by SIGKILL" if backend == "netns" else "node client1 is not running"
    assert why in replies, replies
    # The gone node is noted, per step, and the other nodes were still read and collected.
    gone = {(e["node"], e["step"]) for e in summary["node_errors"]}
    assert ("client1", "snapshot: after") in gone and ("client1", "snapshot: final") in gone
    assert {node for node, _ in gone} == {"client1"}
    for node in ("server", "client2"):
        for phase in ("during", "after", "final"):
            assert (out / node / "snapshots" / f"{phase}.ps.txt").is_file(), (node, phase)
        assert list((out / node).glob("eth*.pcap")), node


def check_server_killed(backend: str, tmp_path: Path) -> None:
    out = tmp_path / "server"
    code, stderr, summary = run_with_fault(backend, "server killed", out)
    # The line names the first failing check: if the "during" snapshot came after the
    # kill, the thread server's missing process fails before this one.
    assert_common(code, stderr, summary, out, "held-echo: ")
    detail = failing(summary)["service ran until stopped"]
    assert "thread_server" in detail and "on server" in detail, detail
    assert "ended before the lab stopped it: killed by SIGKILL" in detail, detail
    assert summary["node_errors"] == []


def check_link_cut(backend: str, tmp_path: Path) -> None:
    """client1's interface goes down while it holds its connection: its half-close waits
    for a FIN that cannot come, and the reply timeout ends it; client2 is unaffected."""
    out = tmp_path / "link"
    code, stderr, summary = run_with_fault(backend, "link cut", out)
    assert_common(code, stderr, summary, out, "client1")
    replies = failing(summary)["replies"]
    assert replies.startswith("1/2 connections"), replies
    assert "client1 #0: recv" in replies and "ETIMEDOUT" in replies, replies
    assert "client2" not in replies
    run = json.loads((out / "run.json").read_text())
    clients = run["scenarios"]["held-echo"]["clients"]
    assert clients["client2"]["result"]["ok"] == 1
    assert clients["client1"]["result"]["failed"] == 1


CHECKS = {
    "client host killed": check_client_host_killed,
    "server killed": check_server_killed,
    "link cut": check_link_cut,
}


@pytest.mark.parametrize("fault", list(CHECKS))
def test_fault_on_netns(root: None, tmp_path: Path, fault: str) -> None:
    CHECKS[fault]("netns", tmp_path)


@pytest.mark.parametrize("fault", list(CHECKS))
def test_fault_on_docker(docker_engine: None, tmp_path: Path, fault: str) -> None:
    CHECKS[fault]("docker", tmp_path)
