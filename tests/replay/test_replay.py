"""Whole runs replayed from recordings of real netns runs: the runner, the checks, the
claims and the report, with no root and no network (``lab.run.backends.fake``).

The recordings are remade with ``python3 -m tests.fixtures.record NAME`` (as root).
"""

from __future__ import annotations

import dataclasses
import html
import json
import shutil
from pathlib import Path

import pytest

from lab.report.record import Summary
from lab.report.summary import finish_run
from lab.run.backends.fake import fake_backend
from lab.run.backends.tape import TOPOLOGY_FILE, Recording, RunCall, SpawnCall
from lab.run.collect import SNAPSHOTS
from lab.run.runner import run_lab
from lab.spec.topology import load_topology

RECORDINGS = Path(__file__).resolve().parent.parent / "fixtures" / "recordings"

# name -> (TCP connections, UDP flows) the captures must show; fork captures nothing.
EXPECTED = {
    "handshake": (2, 0),
    "close": (3, 0),
    "fork": (0, 0),
    "udp": (0, 1),
    "default": (13, 2),
}


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run registry in the test's own folder, not the machine's."""
    monkeypatch.setenv("SOCKET_LAB_STATE", str(tmp_path / "state"))


def replay(recording: Path, out: Path) -> Summary:
    """``lab run`` of the recorded topology on the fake backend; the summary it writes."""
    topology = load_topology(recording / TOPOLOGY_FILE)
    run_lab(topology, fake_backend(recording), out)
    return finish_run(out, topology)


def checks_of(summary: Summary) -> list[tuple[str, str, bool]]:
    return [(sc.name, c.name, c.passed) for sc in summary.scenarios for c in sc.checks]


def failed(summary: Summary) -> list[tuple[str, str]]:
    return [(sc, name) for sc, name, ok in checks_of(summary) if not ok]


def editable(name: str, tmp_path: Path) -> tuple[Path, Recording]:
    """A copy of a recording to edit, and its index."""
    folder = tmp_path / "recording"
    shutil.copytree(RECORDINGS / name, folder)
    return folder, Recording.load(folder)


def test_every_recording_has_an_expectation() -> None:
    assert sorted(p.name for p in RECORDINGS.iterdir() if p.is_dir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_replayed_run_passes_every_check(name: str, tmp_path: Path) -> None:
    summary = replay(RECORDINGS / name, tmp_path / "out")
    assert summary.error is None and summary.node_errors == []
    assert checks_of(summary), "a run with no checks proves nothing"
    assert failed(summary) == []
    assert summary.passed is True
    tcp, udp = EXPECTED[name]
    assert (len(summary.connections), len(summary.udp_flows)) == (tcp, udp)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_replayed_run_writes_a_report_naming_its_checks(name: str, tmp_path: Path) -> None:
    summary = replay(RECORDINGS / name, tmp_path / "out")
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert page.lower().startswith("<!doctype html>") and "no report:" not in page
    for scenario, check, _ in checks_of(summary):
        assert html.escape(scenario) in page and html.escape(check) in page
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["passed"] is True


def test_the_runs_record_says_what_the_recorded_run_did(tmp_path: Path) -> None:
    replay(RECORDINGS / "handshake", tmp_path / "out")
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["backend"] == "fake" and run["failed_step"] is None
    assert run["phases"] == ["before", "during", "after", "final"]
    assert (tmp_path / "out" / "server" / "eth0.pcap").stat().st_size > 0
    clients = run["scenarios"]["connect"]["clients"]
    assert clients["client"]["result"]["ok"] == 2


def test_a_wrong_reply_fails_the_replies_check_only(tmp_path: Path) -> None:
    folder, recording = editable("handshake", tmp_path)
    for k, call in enumerate(recording.calls):
        if isinstance(call, RunCall) and "lab.programs.client" in call.argv:
            result = json.loads(call.stdout)
            result["connections"][1]["replies"] = ["hello"]  # the server echoed, unchanged
            recording.calls[k] = dataclasses.replace(call, stdout=json.dumps(result))
    recording.save(folder)
    summary = replay(folder, tmp_path / "out")
    assert failed(summary) == [("connect", "replies")]
    assert summary.passed is False


def server_pid(recording: Recording, program: str) -> int:
    return next(
        c.pid
        for c in recording.calls
        if isinstance(c, SpawnCall) and f"lab.programs.{program}" in c.argv
    )


def test_a_zombie_in_the_after_snapshot_fails_children_reaped(tmp_path: Path) -> None:
    folder, recording = editable("handshake", tmp_path)
    pid = server_pid(recording, "fork_server")
    ps_on_server = [
        k
        for k, call in enumerate(recording.calls)
        if isinstance(call, RunCall)
        and call.node == "server"
        and list(call.argv) == SNAPSHOTS["ps"]
    ]
    after = ps_on_server[2]  # phases: before, during, after, final
    call = recording.calls[after]
    assert isinstance(call, RunCall)
    zombie = f"{pid + 50} {pid} Z 1 [python3] <defunct>\n"
    recording.calls[after] = dataclasses.replace(call, stdout=call.stdout + zombie)
    recording.save(folder)
    summary = replay(folder, tmp_path / "out")
    assert failed(summary) == [("connect", "children reaped")]


def test_the_unedited_copy_passes(tmp_path: Path) -> None:
    """The edits above are what fails those runs, not the copying and saving."""
    folder, recording = editable("handshake", tmp_path)
    recording.save(folder)
    assert replay(folder, tmp_path / "out").passed is True
