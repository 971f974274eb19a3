"""Results folders made once by a real `lab run` on network namespaces, shared by the
report tests. The run needs root; the fixtures skip (or fail under CI=true) without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from lab.evidence.connections import connection_evidence
from lab.evidence.records import TcpRecord, UdpRecord
from lab.report.page import render_report
from lab.report.record import Summary
from lab.run.record import load_run
from lab.spec.model import Topology
from lab.spec.topology import load_topology
from tests.conftest import require
from tests.labcli import ROOT
from tests.results_schema import assert_valid_results


@dataclass(frozen=True)
class Results:
    out: Path
    topology: Topology
    run: dict[str, Any]
    summary: Summary
    connections: list[TcpRecord]
    udp_flows: list[UdpRecord]
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
    record = load_run(out)
    run = json.loads((out / "run.json").read_text())
    # The connections rebuilt from the evidence, in place of those summary.json holds.
    tcp, udp = connection_evidence(out, topology, record)
    summary = replace(Summary.load(out), connections=tcp, udp_flows=udp)
    page = render_report(out, summary, topology)
    return Results(out, topology, run, summary, tcp, udp, page)


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
