"""`lab run` end to end on real network namespaces: the shipped topologies, the evidence
on disk, and teardown on success, failure, Ctrl-C and SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.labcli import ROOT, lab
from tests.leftovers import live_pids, netns_objects, run_id_of, signal_lab_run_at
from tests.results_schema import assert_valid_results

TOPOLOGIES = ROOT / "topologies"

pytestmark = pytest.mark.netns


def assert_nothing_left(results: Path) -> None:
    assert_valid_results(results)
    run_id = run_id_of(results)
    assert netns_objects(run_id) == []
    assert live_pids(results) == []


@pytest.mark.parametrize("name", ["default", "routed", "scale"])
def test_shipped_topology_passes(root: None, tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    proc = lab(
        "run", str(TOPOLOGIES / f"{name}.yaml"), "--backend", "netns", "--out", str(out), "--json"
    )
    summary = json.loads(proc.stdout)
    failed = [(s["name"], c) for s in summary["scenarios"] for c in s["checks"] if not c["passed"]]
    assert proc.returncode == 0, (failed, proc.stderr[-3000:])
    assert summary["passed"] is True
    assert summary["backend"] == "netns"
    assert set(summary["timings"]) >= {"up", "run", "collect", "down"}
    assert json.loads((out / "summary.json").read_text()) == summary
    for node in summary["nodes"]:
        for phase in ("before", "during", "after", "final"):
            for kind in ("netstat", "ss", "ps"):
                assert (out / node / "snapshots" / f"{phase}.{kind}.txt").is_file()
        assert list((out / node).glob("eth*.pcap")), f"no capture for {node}"
    assert_nothing_left(out)


def test_default_checks_cover_the_issue(root: None, tmp_path: Path) -> None:
    """The default lab checks replies, fork children and reaping, the thread server's
    single process, and the captures; a check that did not run cannot pass silently."""
    out = tmp_path / "d"
    proc = lab(
        "run", str(TOPOLOGIES / "default.yaml"), "--backend", "netns", "--out", str(out), "--json"
    )
    summary = json.loads(proc.stdout)
    names = {c["name"] for s in summary["scenarios"] for c in s["checks"]}
    assert {
        "replies",
        "one child per connection",
        "children reaped",
        "one process, a thread per connection",
        "captured",
    } <= names
    assert "TIME_WAIT" in "".join(p.read_text() for p in out.glob("*/snapshots/after.netstat.txt"))


def test_failing_check_exits_1(root: None, tmp_path: Path) -> None:
    """A scenario expecting the wrong reply fails its check, and the run says so."""
    text = (TOPOLOGIES / "default.yaml").read_text().replace("HELLO", "HULLO", 1)
    assert "HULLO" in text
    topo = tmp_path / "wrong.yaml"
    topo.write_text(text)
    out = tmp_path / "w"
    proc = lab("run", str(topo), "--backend", "netns", "--out", str(out), "--json")
    summary = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert summary["passed"] is False
    bad = [c for s in summary["scenarios"] for c in s["checks"] if not c["passed"]]
    assert any(c["name"] == "replies" and "HELLO" in c["detail"] for c in bad)
    assert_nothing_left(out)


@pytest.mark.parametrize(
    ("topology", "when", "signum", "code"),
    [
        ("scale", "bringing up", signal.SIGINT, 130),
        ("scale", "bringing up", signal.SIGTERM, 1),
        ("default", "snapshot: before", signal.SIGINT, 130),
        ("default", "services", signal.SIGTERM, 1),
        ("default", "clients finished", signal.SIGINT, 130),
        ("default", "snapshot: during", signal.SIGTERM, 1),
        # collecting a netns run takes milliseconds: the signal may land in teardown
        ("default", "collecting", signal.SIGINT, 130),
        ("default", "tearing down", signal.SIGTERM, 1),
    ],
)
def test_interrupted_run_leaves_nothing(
    root: None, tmp_path: Path, topology: str, when: str, signum: int, code: int
) -> None:
    """Signal `lab run` when a progress line appears: clear message, the expected exit
    status, evidence and run.json on disk, and nothing of the run left behind. A signal
    during teardown does not cut it short: teardown finishes, then the run reports it."""
    out = tmp_path / "int"
    proc, seen = signal_lab_run_at(TOPOLOGIES / f"{topology}.yaml", out, when, signum, ROOT)
    _, rest = proc.communicate(timeout=120)
    assert any(when in line for line in seen), "".join(seen)
    assert proc.returncode == code, "".join(seen) + rest
    assert "interrupted by" in rest
    run = json.loads((out / "run.json").read_text())
    assert run["interrupted"] == signal.Signals(signum).name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] is False
    assert summary["interrupted"] == run["interrupted"]
    assert_nothing_left(out)


def test_two_topologies_at_once_do_not_collide(root: None, tmp_path: Path) -> None:
    """Two `lab run` of different topologies side by side both pass and both clean up."""
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lab.cli",
                "run",
                str(TOPOLOGIES / f"{name}.yaml"),
                "--backend",
                "netns",
                "--out",
                str(tmp_path / name),
                "--quiet",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for name in ("default", "routed")
    }
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (name, out[-2000:], err[-2000:])
    ids = {run_id_of(tmp_path / name) for name in procs}
    assert len(ids) == 2
    for name in procs:
        assert_nothing_left(tmp_path / name)


def test_a_progress_reader_that_goes_away_stops_neither_the_run_nor_its_teardown(
    root: None, tmp_path: Path
) -> None:
    """`lab run ... 2>&1 | head -1`: the progress pipe closes after the first line. The
    run used to die of BrokenPipeError at its next progress line, and one at "tearing
    down" left the lab's namespaces behind."""
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "lab.cli", "run", str(TOPOLOGIES / "default.yaml")]
    proc = subprocess.Popen(
        [*argv, "--backend", "netns", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None and proc.stdout is not None
    assert "results in" in proc.stderr.readline()
    proc.stderr.close()
    summary = proc.stdout.read()
    assert proc.wait(timeout=120) == 0, summary
    assert "PASSED: 4/4 scenarios passed" in summary
    assert_nothing_left(out)
