"""The ``retransmission`` experiment end to end on network namespaces: loss only, so it
runs with netem or, on a kernel without it, with the nftables fallback. Its claims pass,
and the retransmission counts of its summary.json are tshark's on the run's own capture."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lab.spec.topology import load_topology
from tests.conftest import require
from tests.labcli import ROOT, lab

pytestmark = pytest.mark.slow

EXPERIMENT = ROOT / "topologies" / "experiments" / "retransmission.yaml"
COUNTS = {
    "retransmissions": "tcp.analysis.retransmission",
    "fast_retransmissions": "tcp.analysis.fast_retransmission",
    "spurious_retransmissions": "tcp.analysis.spurious_retransmission",
}


def tshark_count(pcap: Path, port: int, field: str) -> int:
    argv = ["tshark", "-r", str(pcap), "-Y", f"tcp.port == {port} && {field}",
            "-T", "fields", "-e", "frame.number"]  # fmt: skip
    return len(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split())


def test_the_experiment_uses_loss_alone() -> None:
    # Loss is the one impairment every kernel can make: nothing netem-only.
    topology = load_topology(EXPERIMENT)
    assert topology.impairments and all(not i.netem.netem_only() for i in topology.impairments)


def test_retransmission_runs_passes_and_agrees_with_tshark(root: None, tmp_path: Path) -> None:
    require(shutil.which("tshark") is not None, "needs tshark on PATH")
    out = tmp_path / "results"
    done = lab("experiment", "retransmission", "--backend", "netns", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    (scenario,) = summary["scenarios"]
    check = next(c for c in scenario["checks"] if c["name"] == "retransmission")
    assert check["passed"], check["detail"]
    print(check["detail"])  # the figures the claim read: which resent, after how long
    conns = [c for c in summary["connections"] if c["protocol"] == "tcp"]
    assert conns and sum(c["retransmissions"] for c in conns) > 0
    for conn in conns:
        pcap = out / conn["evidence"]
        port = conn["client"]["port"]
        ours = {key: conn[key] for key in COUNTS}
        theirs = {key: tshark_count(pcap, port, field) for key, field in COUNTS.items()}
        assert ours == theirs, conn["evidence"]
