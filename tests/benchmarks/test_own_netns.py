"""The benchmarks' own network namespace: made for the run, its loopback carrying
connections, no other interface in it, and the benchmark's exit status passed through."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from tests.benchmarks.own_netns import MARK
from tests.labcli import ROOT


def _probe(status: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != MARK}
    return subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.netns_probe", str(status)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
    )  # fmt: skip


def test_a_benchmark_runs_again_in_a_namespace_with_only_its_loopback(root: None) -> None:
    done = _probe(0)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc == {"interfaces": ["lo"], "where": "loopback of its own network namespace"}
    assert len(socket.if_nameindex()) > 1  # the host's, which the probe did not see


def test_the_benchmark_s_exit_status_comes_through(root: None) -> None:
    done = _probe(3)
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout)["interfaces"] == ["lo"]
