"""Results folders made once by a real `lab run` on network namespaces, shared by the
report tests. The run needs root; the fixtures skip (or fail under CI=true) without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.evidence.connections import connection_evidence
from lab.report.page import render_report
from lab.run.record import load_run
from lab.spec.codec import to_json
from lab.spec.model import Topology
from lab.spec.topology import load_topology
from tests.conftest import require
from tests.results_schema import assert_valid_results

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Results:
    out: Path
    topology: Topology
    run: dict[str, Any]
    summary: dict[str, Any]
    connections: list[dict[str, Any]]
    udp_flows: list[dict[str, Any]]
    page: str


def _lab_run(name: str, out: Path) -> Results:
    require(os.geteuid() == 0, "needs root for network namespaces")
    for tool in ("ip", "tcpdump", "ss", "netstat"):
        require(shutil.which(tool) is not None, f"needs {tool} on PATH (run .ci/setup)")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lab.cli",
            "run",
            f"topologies/{name}.yaml",
            "--backend",
            "netns",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    topology = load_topology(out / "topology.yaml")
    assert_valid_results(out)
    run, record = load_run(out)
    summary = json.loads((out / "summary.json").read_text())
    tcp, udp = connection_evidence(out, topology, record)
    conns, flows = [to_json(c) for c in tcp], [to_json(f) for f in udp]
    summary = {**summary, "connections": conns, "udp_flows": flows}
    page = render_report(out, summary, topology, conns)
    return Results(out, topology, run, summary, conns, flows, page)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Results:
    return _lab_run("default", tmp_path_factory.mktemp("report") / "default")


@pytest.fixture(scope="session")
def routed_run(tmp_path_factory: pytest.TempPathFactory) -> Results:
    return _lab_run("routed", tmp_path_factory.mktemp("report") / "routed")


@pytest.fixture(scope="session")
def window_run(tmp_path_factory: pytest.TempPathFactory) -> Results:
    return _lab_run("experiments/window", tmp_path_factory.mktemp("report") / "window")


@pytest.fixture(scope="session")
def iterative_run(tmp_path_factory: pytest.TempPathFactory) -> Results:
    return _lab_run("experiments/iterative", tmp_path_factory.mktemp("report") / "iterative")


@pytest.fixture(scope="session")
def errors_run(tmp_path_factory: pytest.TempPathFactory) -> Results:
    return _lab_run("experiments/errors", tmp_path_factory.mktemp("report") / "errors")
