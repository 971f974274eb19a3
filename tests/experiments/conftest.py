"""Every experiment run once per test session on network namespaces; tests copy a
results folder before changing its evidence."""

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

EXPERIMENTS = Path(__file__).resolve().parents[2] / "topologies" / "experiments"
NAMES = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))


def _run(name: str, out: Path) -> tuple[int, dict[str, Any] | None, str]:
    argv = [sys.executable, "-m", "lab.cli", "run", str(EXPERIMENTS / f"{name}.yaml")]
    argv += ["--backend", "netns", "--out", str(out), "--json", "--quiet"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    try:
        summary = json.loads(done.stdout)
    except ValueError:
        summary = None
    return done.returncode, summary, done.stderr[-2000:]


@pytest.fixture(scope="session")
def experiment_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Path, int, dict[str, Any] | None, str]]:
    """name -> (results folder, exit status, summary, stderr tail) of every experiment,
    run a few at a time: each has its own subnets, so they can share the machine."""
    require(os.geteuid() == 0, "needs root for network namespaces")
    for tool in ("ip", "tcpdump", "ss", "netstat"):
        require(shutil.which(tool) is not None, f"needs {tool} on PATH (run .ci/setup)")
    base = tmp_path_factory.mktemp("experiments")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {n: pool.submit(_run, n, base / n) for n in NAMES}
        return {n: (base / n, *f.result()) for n, f in futures.items()}
