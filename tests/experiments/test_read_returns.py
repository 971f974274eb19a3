"""The read-returns experiment's claims each fail on contradicting evidence (the probe's
record in run.json, or the server's capture, changed in a copy of the session's run); and
the probe itself, on loopback against the fork server, records each outcome of read()."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dpkt
import pytest

from tests.experiments.conftest import Runs
from tests.experiments.evidence_edit import copy_results, judge, rewrite, tcp_of

Events = list[dict[str, Any]]


def _edit_events(folder: Path, edit: Callable[[Events], None]) -> None:
    run = folder / "run.json"
    doc = json.loads(run.read_text())
    edit(
        doc["scenarios"]["read-returns"]["clients"]["client"]["result"]["connections"][0]["events"]
    )
    run.write_text(json.dumps(doc))


def _read(events: Events, step: str) -> dict[str, Any]:
    return next(e for e in events if e["call"] == "read" and e.get("detail") == step)


def _fails(folder: Path, claim: str, words: str) -> None:
    check = judge(folder, "read-returns", claim)
    assert not check.passed and words in check.detail, check.detail


@pytest.fixture
def folder(root: None, experiment_runs: Runs, tmp_path: Path) -> Path:
    found = copy_results(experiment_runs, "read-returns", tmp_path)
    for claim in ("read-bytes", "read-eagain", "read-eintr", "read-restarts", "read-eof"):
        assert judge(found, "read-returns", claim).passed, claim
    return found


@pytest.mark.netns
def test_read_bytes_fails_when_the_count_is_not_the_replys(folder: Path) -> None:
    _edit_events(folder, lambda ev: _read(ev, "bytes").update(bytes=11))
    _fails(folder, "read-bytes", "read() returned 11 but the server's first data segment")


@pytest.mark.netns
def test_read_eagain_fails_when_the_read_returned_data(folder: Path) -> None:
    _edit_events(folder, lambda ev: _read(ev, "eagain").update(bytes=5, error=None))
    _fails(folder, "read-eagain", "read() returned 5")


@pytest.mark.netns
def test_read_eintr_fails_when_no_signal_came_before_it(folder: Path) -> None:
    def later(ev: Events) -> None:
        signal = next(e for e in ev if e["call"] == "signal")
        signal["at"] = _read(ev, "eintr")["at"] + 1

    _edit_events(folder, later)
    _fails(folder, "read-eintr", "no signal was sent while it waited")


def _drop_server(keep: Callable[[Any], bool]) -> Callable[[Any, list[Any]], Any]:
    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet | None:
        tcp = tcp_of(eth)
        return eth if tcp is None or tcp.sport != 9999 or keep(tcp) else None

    return edit


@pytest.mark.netns
def test_read_restarts_fails_without_the_reply_after_the_signal(folder: Path) -> None:
    pcap = folder / "server" / "eth0.pcap"
    assert rewrite(pcap, _drop_server(lambda t: b"AFTER THE SIGNAL" not in bytes(t.data))) >= 1
    _fails(folder, "read-restarts", "no server segment of 17 bytes follows the first")


@pytest.mark.netns
def test_read_eof_fails_without_the_servers_fin(folder: Path) -> None:
    pcap = folder / "server" / "eth0.pcap"
    assert rewrite(pcap, _drop_server(lambda t: not t.flags & dpkt.tcp.TH_FIN)) >= 1
    _fails(folder, "read-eof", "the server's FIN is not in the capture")


def test_probe_records_each_outcome_on_loopback(tmp_path: Path) -> None:
    """The probe alone, against a fork server on 127.0.0.1: each step's read() as shown."""
    server = subprocess.Popen(
        [sys.executable, "-m", "lab.programs.fork_server", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = _listening_port(server.stdout.readline())
        argv = [sys.executable, "-m", "lab.programs.probe", "read-returns", "--json"]
        done = subprocess.run(
            [*argv, "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout)["connections"][0]["events"]
    got = {e["detail"]: (e["bytes"], e["error"]) for e in events if e["call"] == "read"}
    assert got == {
        "bytes": (12, None),
        "eagain": (-1, "EAGAIN"),
        "eintr": (-1, "EINTR"),
        "restart": (17, None),
        "eof": (0, None),
    }


def _listening_port(line: str) -> int:
    # The fork server's first line: "listening tcp 127.0.0.1:PORT pid=... backlog=...".
    found = re.search(r":(\d+)", line)
    assert found is not None, line
    return int(found.group(1))
