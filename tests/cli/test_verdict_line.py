"""The verdict line and the exit status of `lab run` never contradict each other."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.labcli import ROOT
from tests.leftovers import netns_objects, run_id_of, signal_lab_run_at


def test_sigint_during_teardown_says_interrupted_not_failed(root: None, tmp_path: Path) -> None:
    out = tmp_path / "int"
    proc, seen = signal_lab_run_at(
        ROOT / "topologies/default.yaml", out, "tearing down", signal.SIGINT, ROOT
    )
    stdout, rest = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + rest
    verdict = stdout.strip().splitlines()[-1]
    assert verdict.startswith("INTERRUPTED (SIGINT): "), stdout
    assert "before the interrupt" in verdict
    assert "FAILED" not in stdout and "PASSED" not in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] == "SIGINT" and summary["passed"] is False
    page = (out / "report.html").read_text()
    assert ">INTERRUPTED</span>" in page and ">FAILED</span>" not in page
    assert netns_objects(run_id_of(out)) == []
