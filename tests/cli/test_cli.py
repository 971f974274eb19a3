"""The `lab` command's edges: exit codes, located errors, nothing created on bad input,
and `lab ls` / `lab clean` finding what a killed run left behind."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.labcli import ROOT, lab
from tests.leftovers import netns_objects, signal_lab_run_at


def test_validate_good_file() -> None:
    proc = lab("validate", "topologies/default.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout


def test_validate_reports_every_problem_located() -> None:
    proc = lab("validate", "tests/cli/broken.yaml")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("tests/cli/broken.yaml:")]
    # address outside subnet (line 6), unknown network (line 8), unknown node and port (line 10)
    assert {line.split(":")[1] for line in lines} >= {"6", "8", "10"}, proc.stderr
    assert len(lines) >= 4
    assert "Traceback" not in proc.stderr


def test_run_of_bad_file_creates_nothing(tmp_path: Path) -> None:
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    proc = lab("run", "tests/cli/broken.yaml", "--backend", "netns", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "nothing was created" in proc.stderr
    assert not (tmp_path / "o").exists()
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    # Only this file's nodes count: other labs may come and go on the machine meanwhile.
    new = set(after.split()) - set(before.split())
    assert not {ns for ns in new if ns.endswith(("-brokena", "-brokenb"))}


def test_unreachable_docker_engine_is_one_clear_line(tmp_path: Path) -> None:
    proc = lab(
        "run",
        "topologies/default.yaml",
        "--backend",
        "docker",
        "--out",
        str(tmp_path),
        env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"},
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "docker" in proc.stderr.lower()


def test_report_on_a_folder_that_is_not_results(tmp_path: Path) -> None:
    proc = lab("report", str(tmp_path))
    assert proc.returncode == 1
    assert "not a results folder" in proc.stderr


@pytest.mark.netns
def test_clean_removes_what_a_killed_run_left(root: None, tmp_path: Path) -> None:
    """SIGKILL leaves no chance to tear down: `lab ls` must show the orphan and
    `lab clean --run-id` must remove all of it (namespaces, links, processes)."""
    out = tmp_path / "k"
    proc, _ = signal_lab_run_at(
        ROOT / "topologies/default.yaml", out, "snapshot: during", signal.SIGKILL, ROOT
    )
    proc.communicate(timeout=30)
    run_id = next(
        p.stem
        for p in Path("/run/socket-lab").glob("*.json")
        if json.loads(p.read_text()).get("out") == str(out)
    )
    assert netns_objects(run_id), "the killed run should have left its namespaces"
    listed = json.loads(lab("ls", "--json").stdout)
    mine = [r for r in listed if r["run_id"] == run_id]
    assert mine and mine[0]["alive"] is False
    cleaned = lab("clean", "--run-id", run_id)
    assert cleaned.returncode == 0, cleaned.stderr
    assert run_id in cleaned.stdout
    assert netns_objects(run_id) == []
    assert not Path(f"/run/socket-lab/{run_id}.json").exists()
