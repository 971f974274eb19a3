"""`lab run` end to end on the Docker backend: every shipped topology passes the same
checks as on netns, summary.json names the backend, and nothing labelled is left."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.labcli import ROOT
from tests.leftovers import docker_objects, signal_lab_run_at

pytestmark = pytest.mark.docker


@pytest.mark.parametrize("name", ["default", "routed", "scale"])
def test_shipped_topology_passes_on_docker(docker_engine: None, tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lab.cli",
            "run",
            f"topologies/{name}.yaml",
            "--backend",
            "docker",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    summary = json.loads(proc.stdout)
    failed = [(s["name"], c) for s in summary["scenarios"] for c in s["checks"] if not c["passed"]]
    assert proc.returncode == 0, (failed, proc.stderr[-3000:])
    assert summary["backend"] == "docker"
    assert summary["passed"] is True
    for node in summary["nodes"]:
        assert list((out / node).glob("eth*.pcap")), f"no capture for {node}"
        assert (out / node / "snapshots" / "during.ps.txt").is_file()
    assert docker_objects(summary["run_id"]) == []


@pytest.mark.parametrize(
    ("when", "signum", "code"),
    [("bringing up", signal.SIGINT, 130), ("snapshot: during", signal.SIGTERM, 1)],
)
def test_interrupted_docker_run_leaves_nothing(
    docker_engine: None, tmp_path: Path, when: str, signum: int, code: int
) -> None:
    """Ctrl-C during bring-up and SIGTERM mid-scenario: the run says so, keeps its
    evidence, and no labelled container or network of it remains."""
    out = tmp_path / "int"
    proc, seen = signal_lab_run_at(
        ROOT / "topologies/default.yaml", out, when, signum, ROOT, backend="docker"
    )
    _, rest = proc.communicate(timeout=180)
    assert proc.returncode == code, "".join(seen) + rest
    assert "interrupted by" in rest
    run = json.loads((out / "run.json").read_text())
    assert run["interrupted"] == signal.Signals(signum).name
    assert json.loads((out / "summary.json").read_text())["passed"] is False
    assert docker_objects(run["run_id"]) == []
