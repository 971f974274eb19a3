"""`lab run` end to end on the Docker backend: every shipped topology passes the same
checks as on netns, summary.json names the backend, and nothing labelled is left."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import docker
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.docker


def labelled_objects(run_id: str) -> list[str]:
    client = docker.from_env()
    try:
        label = f"socket-lab.run={run_id}"
        found = [
            f"container {c.name}"
            for c in client.containers.list(all=True, filters={"label": label})
        ]
        found += [f"network {n.name}" for n in client.networks.list(filters={"label": label})]
        return found
    finally:
        client.close()


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
    assert labelled_objects(summary["run_id"]) == []
