"""`lab clean`: it removes only what no running lab owns, keeps the evidence of what it
removes, waits for the processes it stops, and refuses what is not a run id.

The bare `lab clean` here runs in this process with what it can see narrowed to this
test's own runs (a registry folder of its own, and only this test's namespaces): on a
shared machine a bare clean must never reach other people's labs, even before it is
fixed not to."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import lab.run.backends as backends_pkg
import lab.run.backends.netns.backend as netns_backend
from lab.cli import main
from lab.run.backends.base import new_run_id
from lab.run.backends.netns.names import run_dirs
from tests.labcli import ROOT, lab
from tests.leftovers import (
    live_pids,
    netns_objects,
    processes_of_run,
    read_until,
    run_id_in,
    start_lab_run,
)

DEFAULT = ROOT / "topologies" / "default.yaml"


def held_topology(folder: Path, name: str, hold: int) -> Path:
    """The default lab under another name, its fork and thread clients holding ``hold`` s."""
    text = DEFAULT.read_text().replace("name: default", f"name: {name}", 1)
    text = text.replace("hold: 2 ", f"hold: {hold} ")
    assert f"hold: {hold} " in text
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def test_clean_refuses_what_is_not_a_run_id() -> None:
    """`--run-id zzz` is bad input (exit 2, said so), not a host that did not answer."""
    proc = lab("clean", "--run-id", "zzz")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not a run id" in proc.stderr
    assert "again once they answer" not in proc.stderr
    assert "Traceback" not in proc.stderr


def test_clean_of_an_unknown_run_id_is_nothing_to_clean() -> None:
    proc = lab("clean", "--run-id", new_run_id())
    assert proc.returncode == 0, proc.stderr
    assert "nothing to clean" in proc.stdout


@pytest.fixture
def scoped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """A registry of this test's own and a netns backend that sees only the run ids put
    in the returned set: the bare `lab clean` of this test touches nothing else."""
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("SOCKET_LAB_STATE", str(state))
    mine: set[str] = set()
    monkeypatch.setattr(backends_pkg, "BACKENDS", {"netns": backends_pkg.BACKENDS["netns"]})
    for name in ("lab_namespaces", "lab_links"):
        real = getattr(netns_backend, name)
        pattern = re.compile(r"^slab-?(?P<rid>[0-9a-f]{6})")

        def only_mine(real: object = real, pattern: re.Pattern[str] = pattern) -> list[str]:
            found: list[str] = real()  # type: ignore[operator]
            return [n for n in found if (m := pattern.match(n)) and m["rid"] in mine]

        monkeypatch.setattr(netns_backend, name, only_mine)
    monkeypatch.setattr(netns_backend, "run_dirs", lambda: [d for d in run_dirs() if d in mine])
    yield mine


def test_bare_clean_spares_a_running_lab_and_cleans_a_killed_one(
    root: None, tmp_path: Path, scoped: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    live_out, dead_out = tmp_path / "live", tmp_path / "dead"
    live = start_lab_run(held_topology(tmp_path, "spared", 8), live_out, ROOT)
    dead = start_lab_run(held_topology(tmp_path, "killed", 8), dead_out, ROOT)
    try:
        live_id = run_id_in(read_until(live, "snapshot: during"))
        dead_id = run_id_in(read_until(dead, "snapshot: during"))
        scoped.update({live_id, dead_id})
        dead.kill()
        dead.communicate(timeout=30)
        code = main(["clean"])
        out, err = capsys.readouterr()
        assert code == 0, out + err
        assert netns_objects(dead_id) == [] and processes_of_run(dead_id) == []
        assert netns_objects(live_id), "the running lab's namespaces were removed"
        # It says what it left alone: the run, that it is running, and its owner.
        assert f"{live_id}" in out and f"pid {live.pid}" in out, out
        stdout, stderr = live.communicate(timeout=120)
        assert live.returncode == 0, stdout + stderr
        assert "FAIL" not in stdout
        assert (dead_out / "server").is_dir(), "the killed run's evidence was not collected"
    finally:
        for proc in (live, dead):
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)
        for rid in scoped:  # nothing left to remove when the test passed
            lab("clean", "--run-id", rid, "--force")


def test_clean_of_a_killed_run_keeps_what_it_did(root: None, tmp_path: Path) -> None:
    """SIGKILL mid-scenario: run.json says how far the run got (services listening,
    snapshots taken), `lab clean --run-id` collects its pcaps, logs and snapshots into its
    folder, says so in run.json, and returns only once its processes are gone."""
    out = tmp_path / "k"
    proc = start_lab_run(held_topology(tmp_path, "killedmid", 6), out, ROOT)
    run_id = None
    try:
        run_id = run_id_in(read_until(proc, "snapshot: during"))
        # The "during" snapshot is under way: the clients hold their connections.
        proc.kill()
        proc.communicate(timeout=30)
        record = json.loads((out / "run.json").read_text())
        assert set(record["services"]) == {"fork", "thread", "udp", "dict"}
        assert "before" in record["phases"]
        assert record["failed_step"] is not None
        assert not list((out).glob("*/*.pcap")), "the evidence is still on the nodes"
        # Under sudo, what clean collects is handed to the user who asked, like a run's results.
        cleaned = lab("clean", "--run-id", run_id, env={"SUDO_UID": "65534", "SUDO_GID": "65534"})
        assert cleaned.returncode == 0, cleaned.stderr
        collected = [p for p in out.rglob("*") if not p.is_symlink()]
        assert {(p.stat().st_uid, p.stat().st_mode & 0o002) for p in collected} == {(65534, 0)}
        # Checked at once: clean returns when the run's processes are gone, not before.
        assert processes_of_run(run_id) == []
        assert live_pids(out) == []
        assert netns_objects(run_id) == []
        assert list(out.glob("server/*.pcap")), "the server's captures were not collected"
        assert list(out.glob("server/service-*.log"))
        assert list(out.glob("server/snapshots/before.*"))
        record = json.loads((out / "run.json").read_text())
        assert "cleaned" in record, cleaned.stdout + cleaned.stderr
        assert record["cleaned"]["owner_alive"] is False
        assert "collected" in cleaned.stdout
        report = lab("report", str(out))
        assert report.returncode == 1
        assert "never started" not in report.stdout + report.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
        if run_id is not None:
            lab("clean", "--run-id", run_id)


def test_a_running_lab_is_removed_only_with_force_and_keeps_its_evidence(
    root: None, tmp_path: Path
) -> None:
    out = tmp_path / "forced"
    proc = start_lab_run(held_topology(tmp_path, "forced", 8), out, ROOT)
    run_id = None
    try:
        run_id = run_id_in(read_until(proc, "snapshot: during"))
        refused = lab("clean", "--run-id", run_id)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "still running" in refused.stderr and "--force" in refused.stderr
        assert netns_objects(run_id), "a refused clean removed the run"
        forced = lab("clean", "--run-id", run_id, "--force")
        assert forced.returncode == 0, forced.stdout + forced.stderr
        proc.communicate(timeout=60)
        assert netns_objects(run_id) == [] and processes_of_run(run_id) == []
        # What the run had gathered is in its folder, and the folder says how it ended.
        assert list(out.glob("server/*.pcap")) and list(out.glob("server/snapshots/before.*"))
        record = json.loads((out / "run.json").read_text())
        assert record["interrupted"] == "SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
        if run_id is not None:
            lab("clean", "--run-id", run_id)


def test_bare_clean_spares_a_running_lab_whose_registry_entry_is_lost(
    root: None, tmp_path: Path, scoped: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lost"
    proc = start_lab_run(held_topology(tmp_path, "lostentry", 6), out, ROOT)
    try:
        run_id = run_id_in(read_until(proc, "snapshot: during"))
        scoped.add(run_id)
        entry = Path(os.environ["SOCKET_LAB_STATE"]) / f"{run_id}.json"
        entry.unlink()
        code = main(["clean"])
        printed, err = capsys.readouterr()
        assert code == 0, printed + err
        assert netns_objects(run_id), "a running lab without its registry entry was removed"
        assert f"run {run_id}" in printed and f"pid {proc.pid}" in printed, printed
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stdout + stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
        for rid in scoped:
            lab("clean", "--run-id", rid, "--force")


def test_force_without_a_run_id_is_refused() -> None:
    """--force is for one named run: a bare `lab clean --force` would otherwise read as
    "remove every lab, running or not"."""
    proc = lab("clean", "--force")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--run-id" in proc.stderr
    assert "Traceback" not in proc.stderr
