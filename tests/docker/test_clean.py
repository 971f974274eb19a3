"""A bare `lab clean` on Docker: a running lab is left alone, a killed one is removed
with its evidence collected from its containers into its results folder.

The clean runs in this process with what it sees narrowed to this test's runs (its own
registry folder, only this test's labelled objects): on a shared engine a bare clean must
never reach other people's labs, even before it is fixed not to."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import pytest

import lab.run.backends as backends_pkg
from lab.cli import main
from lab.run.backends.docker import RUN_LABEL, teardown
from tests.docker.conftest import labelled
from tests.labcli import ROOT, lab
from tests.leftovers import read_until, run_id_in, start_lab_run

DEFAULT = ROOT / "topologies" / "default.yaml"


def held_topology(folder: Path, name: str, hold: int) -> Path:
    text = DEFAULT.read_text().replace("name: default", f"name: {name}", 1)
    text = text.replace("hold: 2 ", f"hold: {hold} ")
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def scoped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Only the docker backend, only the run ids put in the returned set."""
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("SOCKET_LAB_STATE", str(state))
    monkeypatch.setattr(backends_pkg, "BACKENDS", {"docker": backends_pkg.BACKENDS["docker"]})
    mine: set[str] = set()
    real_remove, real_describe = teardown.remove_labelled, teardown.describe_runs

    def remove(client: Any, match: Mapping[str, str]) -> list[str]:
        if match.get(RUN_LABEL) in mine:
            return real_remove(client, match)
        return [item for rid in sorted(mine) for item in real_remove(client, {RUN_LABEL: rid})]

    def describe(client: Any) -> Mapping[str, str]:
        return {rid: what for rid, what in real_describe(client).items() if rid in mine}

    monkeypatch.setattr(teardown, "remove_labelled", remove)
    monkeypatch.setattr(teardown, "describe_runs", describe)
    yield mine


def test_bare_clean_spares_a_running_lab_and_collects_a_killed_one(
    engine: docker.DockerClient,
    tmp_path: Path,
    scoped: set[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    live_out, dead_out = tmp_path / "live", tmp_path / "dead"
    live = start_lab_run(held_topology(tmp_path, "dspared", 20), live_out, ROOT, "docker")
    dead = start_lab_run(held_topology(tmp_path, "dkilled", 10), dead_out, ROOT, "docker")
    try:
        live_id = run_id_in(read_until(live, "snapshot: during"))
        dead_id = run_id_in(read_until(dead, "snapshot: during"))
        scoped.update({live_id, dead_id})
        dead.kill()
        dead.communicate(timeout=30)
        code = main(["clean"])
        out, err = capsys.readouterr()
        assert code == 0, out + err
        assert labelled(engine, dead_id) == []
        assert labelled(engine, live_id), "the running lab's containers were removed"
        assert f"run {live_id}" in out and f"pid {live.pid}" in out, out
        assert list(dead_out.glob("server/*.pcap")), "the killed lab's captures were lost"
        record = json.loads((dead_out / "run.json").read_text())
        assert record["cleaned"]["owner_alive"] is False
        stdout, stderr = live.communicate(timeout=180)
        assert live.returncode == 0, stdout + stderr
    finally:
        for proc in (live, dead):
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)
        for rid in scoped:
            lab("clean", "--run-id", rid, "--force")
