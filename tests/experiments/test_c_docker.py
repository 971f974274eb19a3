"""The course's C programs in Docker containers: topologies/c.yaml and each spot-the-bug
experiment, built inside the node image and judged like on network namespaces (slow: one
container per node, the programs compiled in each). Run one at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.experiments.test_c_experiments import BUG_NAMES, CAUGHT, _check, _failed
from tests.labcli import lab
from tests.results_schema import assert_valid_results

pytestmark = pytest.mark.slow


# The iterative experiment's client is the course's str_cli: a user's client program.
@pytest.mark.parametrize("name", ["c.yaml", "iterative", *BUG_NAMES])
def test_c_run_passes_on_docker(docker_engine: None, tmp_path: Path, name: str) -> None:
    args = ["run", "topologies/c.yaml"] if name == "c.yaml" else ["experiment", name]
    args += ["--impl", "c"] if name == "iterative" else []
    out = tmp_path / "out"
    done = lab(*args, "--backend", "docker", "--out", str(out), "--json", "--quiet", timeout=400)
    summary = json.loads(done.stdout) if done.stdout.startswith("{") else None
    assert summary is not None, done.stderr[-2000:]
    assert_valid_results(out)
    assert summary["backend"] == "docker"
    assert _failed(summary) == [] and done.returncode == 0, done.stderr[-2000:]
    for buggy, check, correct, evidence in CAUGHT.get(name, []):
        caught = _check(summary, buggy, check)
        assert caught["name"] == f"{check} (bug)" and evidence in caught["detail"], caught
        assert _check(summary, correct, check)["name"] == check
