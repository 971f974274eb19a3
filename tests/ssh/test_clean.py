"""`lab clean` with no run id over SSH: every recorded run whose hosts answer is cleaned,
the ones that do not are listed (not raised on) and the exit code says so. Run in this
process with only the ssh backend in play: a real `lab clean` of every backend would
also clean other labs running on this machine."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import lab.run.backends
from lab.cli import main
from lab.run.backends.base import new_run_id
from lab.run.backends.ssh.backend import SshBackend
from lab.run.backends.ssh.state import state_path
from lab.run.record import RunRecord
from lab.run.session import RegisteredRun, registry_dir
from tests.backends.contract_kit import lan
from tests.ssh.hosts import World, run_dirs, run_processes

pytestmark = pytest.mark.ssh

SLEEP = "import time; time.sleep(120)"


def abandoned_run(
    world: World, cls: type[SshBackend], *, owner_gone: bool = True
) -> tuple[SshBackend, int]:
    """A run whose owner is gone without tearing down: a process left on its host. Its
    state file names this test's process as the owner; ``owner_gone`` makes it name a
    process that has exited instead."""
    backend = cls(new_run_id())
    backend.up(world.attach(lan("h1")))
    proc = backend.spawn("h1", [backend.python, "-c", SLEEP], log=backend.workdir("h1") / "s.log")
    if owner_gone:
        path = state_path(backend.run_id)
        data = json.loads(path.read_text())
        data["pid"], data["pid_start"] = dead_pid(), None
        path.write_text(json.dumps(data))
    return backend, proc.pid  # and down() is never called


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_clean_all_spares_a_run_whose_owner_lives(
    worlds: Callable[..., World],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A run made by a live process (here, this test) is not an orphan, whether or not
    `lab run`'s registry knows it: a bare `lab clean` leaves it alone and says so."""
    world = worlds(lan("h1"))
    known = tmp_path / "kh"
    known.write_text("".join(h.known_hosts_line() for h in world.hosts.values()))
    live, live_pid = abandoned_run(
        world, SshBackend.configured(known_hosts=known), owner_gone=False
    )
    try:
        only_ssh = {"ssh": lab.run.backends.BACKENDS["ssh"]}
        monkeypatch.setattr(lab.run.backends, "BACKENDS", only_ssh)
        code = main(["clean", "--json"])
        out, err = capsys.readouterr()
        assert code == 0, out + err
        assert live_pid in run_processes(live.run_id), "a live run's process was killed"
        [spared] = [line for line in json.loads(out)["left_alone"] if live.run_id in line]
        assert f"pid {os.getpid()}" in spared
    finally:
        live.down()
    assert run_processes(live.run_id) == []


def test_clean_all_cleans_what_answers_and_lists_what_does_not(
    worlds: Callable[..., World],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reachable, lost = worlds(lan("h1")), worlds(lan("h1"))
    known = tmp_path / "kh"
    known.write_text(
        "".join(h.known_hosts_line() for w in (reachable, lost) for h in w.hosts.values())
    )
    cls = SshBackend.configured(known_hosts=known)
    kept, kept_pid = abandoned_run(reachable, cls)
    gone, gone_pid = abandoned_run(lost, cls)
    lost.cut("h1")
    try:
        only_ssh = {"ssh": lab.run.backends.BACKENDS["ssh"]}
        monkeypatch.setattr(lab.run.backends, "BACKENDS", only_ssh)
        code = main(["clean", "--json"])
        out, err = capsys.readouterr()
        assert code == 1
        result = json.loads(out)
        assert any(f"process {kept_pid}" in item for item in result["removed"])
        assert run_processes(kept.run_id) == [] and run_dirs(kept.run_id) == []
        [problem] = result["problems"]
        assert f"run {gone.run_id}: node h1" in problem
        assert f"{lost.hosts['h1'].address}" in problem
        assert "lab: not cleaned" in err and f"run {gone.run_id}" in err
        # The lost run is still recorded, and still there, for a later clean.
        assert gone.run_id in SshBackend.running_labs()
        assert kept.run_id not in SshBackend.running_labs()
        assert gone_pid in run_processes(gone.run_id)
    finally:
        lost.restore("h1")
        cleaned = SshBackend.clean(gone.run_id)
    assert any(f"process {gone_pid}" in item for item in cleaned)
    assert run_processes(gone.run_id) == [] and run_dirs(gone.run_id) == []


def test_clean_all_collects_a_dead_runs_files_into_its_results_folder(
    worlds: Callable[..., World],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A killed `lab run` over SSH: its registry entry names its results folder, and the
    files on its host reach that folder before the host is cleaned."""
    monkeypatch.setenv("SOCKET_LAB_STATE", str(tmp_path / "state"))
    world = worlds(lan("h1"))
    known = tmp_path / "kh"
    known.write_text("".join(h.known_hosts_line() for h in world.hosts.values()))
    dead, _ = abandoned_run(world, SshBackend.configured(known_hosts=known))
    dead.run("h1", ["sh", "-c", "echo captured > evidence.txt"])
    out = tmp_path / "results"
    out.mkdir()
    RunRecord(dead.run_id, "lan", "ssh", "2026-01-01T00:00:00Z", str(out)).save(out)
    entry = RegisteredRun(dead.run_id, "lan", "ssh", dead_pid_of_state(dead), str(out), "")
    registry_dir().mkdir(parents=True, exist_ok=True)
    (registry_dir() / f"{dead.run_id}.json").write_text(json.dumps(entry.to_json()))
    monkeypatch.setattr(lab.run.backends, "BACKENDS", {"ssh": lab.run.backends.BACKENDS["ssh"]})
    code = main(["clean"])
    printed, err = capsys.readouterr()
    assert code == 0, printed + err
    assert (out / "h1" / "evidence.txt").read_text() == "captured\n"
    assert json.loads((out / "run.json").read_text())["cleaned"]["owner_alive"] is False
    assert run_processes(dead.run_id) == [] and run_dirs(dead.run_id) == []
    assert not (registry_dir() / f"{dead.run_id}.json").exists()


def dead_pid_of_state(backend: SshBackend) -> int:
    return int(json.loads(state_path(backend.run_id).read_text())["pid"])
