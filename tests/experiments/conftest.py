"""Every experiment run once per test session on each backend (network namespaces, and
Docker when the engine and the node image are there); tests copy a results folder before
changing its evidence."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.results_schema import assert_valid_results

EXPERIMENTS = Path(__file__).resolve().parents[2] / "topologies" / "experiments"
NAMES = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))
# Experiments that take over a minute by design: each has a slow test of its own, run once
# on netns (tests/experiments/test_time_wait.py), not in every backend's session run.
SLOW = frozenset({"time-wait"})
# The experiments a session runs on each backend: all but the slow ones, or only those named
# in SOCKET_LAB_EXPERIMENTS (comma-separated), as the netem guest does (tests/vm), where
# each run takes some times longer and only the impaired-link experiments are its business.
_ONLY = os.environ.get("SOCKET_LAB_EXPERIMENTS", "")
RUN_NAMES = (
    [n for n in NAMES if n in _ONLY.split(",")] if _ONLY else [n for n in NAMES if n not in SLOW]
)

Runs = dict[str, tuple[Path, int, dict[str, Any] | None, str]]

# Experiments run at once per backend: each has its own subnets, so they can share the
# machine; Docker runs are heavier (containers, docker exec per command), so fewer.
WORKERS = {"netns": 4, "docker": 2}


def _run(name: str, out: Path, backend: str) -> tuple[int, dict[str, Any] | None, str]:
    argv = [sys.executable, "-m", "lab.cli", "run", str(EXPERIMENTS / f"{name}.yaml")]
    argv += ["--backend", backend, "--out", str(out), "--json", "--quiet"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    try:
        summary = json.loads(done.stdout)
    except ValueError:
        summary = None
    if (out / "run.json").is_file():
        assert_valid_results(out)
    return done.returncode, summary, done.stderr[-2000:]


def run_all(base: Path, backend: str) -> Runs:
    """name -> (results folder, exit status, summary, stderr tail) of every experiment."""
    with ThreadPoolExecutor(max_workers=WORKERS[backend]) as pool:
        futures = {n: pool.submit(_run, n, base / n, backend) for n in RUN_NAMES}
        return {n: (base / n, *f.result()) for n, f in futures.items()}


_DONE: dict[str, Runs] = {}  # backend -> its runs, made once per session


def _require(backend: str) -> None:
    """Skip (fail in CI) unless the backend can run here, as the root/docker_engine
    fixtures do."""
    if backend == "netns":
        require(os.geteuid() == 0, "needs root for network namespaces")
        for tool in ("ip", "tcpdump", "ss", "netstat"):
            require(shutil.which(tool) is not None, f"needs {tool} on PATH (run .ci/setup)")
        return
    from lab.run.backends.docker import DockerBackend

    reason = DockerBackend.available()
    require(reason is None, reason or "")


def _runs(backend: str, factory: pytest.TempPathFactory) -> Runs:
    _require(backend)
    if backend not in _DONE:
        _DONE[backend] = run_all(factory.mktemp(f"experiments-{backend}"), backend)
    return _DONE[backend]


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("netns", marks=pytest.mark.netns),
        pytest.param("docker", marks=pytest.mark.docker),
    ],
)
def backend_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Every experiment on each backend (the test runs once per backend, in its tier)."""
    return _runs(request.param, tmp_path_factory)


@pytest.fixture(scope="session")
def experiment_runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Every experiment on network namespaces: the evidence the claim tests change."""
    return _runs("netns", tmp_path_factory)
