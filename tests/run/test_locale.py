"""A user's language must not reach the node's tools: netstat translates its header and
its TCP states (ESTABLISHED is VERBUNDEN in German), which the snapshot readers would not
know. GNU gettext honours LANGUAGE even under the C.UTF-8 locale, so LANGUAGE=de alone
is enough to change netstat's words on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.labcli import ROOT, lab

pytestmark = pytest.mark.netns


def test_a_german_terminal_gets_the_same_evidence(root: None, tmp_path: Path) -> None:
    out = tmp_path / "de"
    env = {"LANGUAGE": "de", "LANG": "C.UTF-8"}
    argv = ["run", str(ROOT / "topologies" / "default.yaml"), "--backend", "netns"]
    proc = lab(*argv, "--out", str(out), "--json", env=env)
    summary = json.loads(proc.stdout)
    failed = [c["name"] for s in summary["scenarios"] for c in s["checks"] if not c["passed"]]
    assert proc.returncode == 0, (failed, proc.stderr[-2000:])
    during = (out / "server" / "snapshots" / "during.netstat.txt").read_text()
    assert during.startswith("Active Internet connections")
    assert "ESTABLISHED" in during and "VERBUNDEN" not in during
