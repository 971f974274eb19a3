"""SIGINT and SIGTERM sent to `lab run` at ten points of a run: during bring-up, capture
start, the "before" snapshot, services, the scenario, the "during" snapshot, the "after"
snapshot, stop, collection and teardown.

Every time: exit status 130 (SIGINT) or 1 (SIGTERM) with one line on stderr, run.json and
summary.json saying which signal stopped it and in which step, the snapshots and captures
taken so far on disk, and nothing of the run left (counted by tests/leftovers.py). On netns
the 20 runs (ten points, both signals, mixed) run back to back and the leftovers of all of
them are counted and printed; on Docker the ten points are sent SIGTERM."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.labcli import ROOT
from tests.leftovers import leftovers_of, read_until, start_lab_run

TOPOLOGY = Path(__file__).resolve().parent / "interrupts.yaml"
NODES = ("server", "client")
KINDS = ("netstat", "ss", "ps")

# Where a run can be when it stops, in order; None: every step done (teardown).
STEPS: list[str | None] = [
    "up",
    "capture start",
    "snapshot: before",
    "services",
    "scenarios",
    "snapshot: during",
    "scenarios",
    "snapshot: after",
    "stop",
    "snapshot: final",
    "collect",
    None,
]
# point -> (the progress line it is sent at, the first step it can land in). Steps can
# take milliseconds, so a signal may land in a later one: never in an earlier one.
POINTS: dict[str, tuple[str, int]] = {
    "bring-up": ("bringing up", 0),
    "capture start": ("capture start", 1),
    "before snapshot": ("snapshot: before", 2),
    "services": ("services", 3),
    "scenario": ("scenarios", 4),
    "during snapshot": ("snapshot: during", 5),
    "after snapshot": ("snapshot: after", 7),
    "stop": ("stop", 8),
    "collection": ("collecting artifacts", 10),
    "teardown": ("tearing down", 11),
}
EXIT: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 1}


def interrupt(point: str, signum: int, out: Path, backend: str) -> list[str]:
    """One run signalled at ``point``; the problems found (empty: all held)."""
    line, first = POINTS[point]
    proc = start_lab_run(TOPOLOGY, out, ROOT, backend)
    try:
        seen = read_until(proc, line)
        proc.send_signal(signum)
        _, rest = proc.communicate(timeout=180)  # a guard against a hang, not a timing
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    where = f"{backend} {point} {signal.Signals(signum).name}"
    return [f"{where}: {p}" for p in judge(out, signum, first, proc.returncode, seen, rest)]


def judge(out: Path, signum: int, first: int, code: int, seen: list[str], rest: str) -> list[str]:
    name = signal.Signals(signum).name
    log = "".join(seen) + rest
    if code != EXIT[signum]:
        return [f"exit status {code}, not {EXIT[signum]}:\n{log}"]
    problems = []
    if rest.strip().splitlines()[-1:] != [f"lab: interrupted by {name}; the run was torn down"]:
        problems.append(f"last stderr line is not the interruption:\n{log}")
    if not (out / "run.json").is_file() or not (out / "summary.json").is_file():
        return [*problems, "no run.json or summary.json"]
    run = json.loads((out / "run.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    if run["interrupted"] != name or summary["interrupted"] != name or summary["passed"]:
        problems.append(f"not marked interrupted by {name}: {summary['interrupted']}")
    step = run["failed_step"]
    if step not in STEPS[first:] or summary["failed_step"] != step:
        problems.append(f"failed step {step!r} (summary: {summary['failed_step']!r})")
    if step is not None:
        checks = [c for sc in summary["scenarios"] for c in sc["checks"]]
        if checks != [
            {"name": "run completed", "passed": False, "detail": f"stopped during {step}"}
        ]:
            problems.append(f"checks do not say where it stopped: {checks}")
    problems += missing_evidence(out, run)
    left = leftovers_of(out)
    if left:
        problems.append(f"left behind: {left}")
    return problems


def missing_evidence(out: Path, run: dict[str, Any]) -> list[str]:
    """Every snapshot phase run.json lists is on disk for every node, and every capture."""
    missing = [
        f"{node}/snapshots/{phase}.{kind}.txt"
        for phase in run["phases"]
        for node in NODES
        for kind in KINDS
        if not (out / node / "snapshots" / f"{phase}.{kind}.txt").is_file()
    ]
    missing += [
        f"{c['node']}/{c['file']}"
        for c in run["captures"]
        if not (out / c["node"] / c["file"]).is_file()
    ]
    return [f"evidence missing: {missing}"] if missing else []


def mixed_order() -> list[tuple[str, signal.Signals]]:
    """Ten points, each with both signals: SIGINT and SIGTERM alternate along the run,
    and the second round goes through the points backwards."""
    names = list(POINTS)
    first = [(p, signal.SIGINT if k % 2 else signal.SIGTERM) for k, p in enumerate(names)]
    second = [(p, signal.SIGTERM if k % 2 else signal.SIGINT) for k, p in enumerate(names)]
    return first + second[::-1]


def test_twenty_interrupted_runs_leave_nothing(
    root: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    order = mixed_order()
    assert len(order) == 20 and len(set(order)) == 20
    problems: list[str] = []
    outs = []
    for k, (point, signum) in enumerate(order):
        out = tmp_path / f"run{k:02d}"
        outs.append(out)
        problems += interrupt(point, signum, out, "netns")
    left = [item for out in outs if (out / "run.json").is_file() for item in leftovers_of(out)]
    with capsys.disabled():
        print(f"\nleftovers after {len(order)} interrupted netns runs: {len(left)}")
    assert left == []
    assert problems == []


@pytest.mark.parametrize("point", list(POINTS))
def test_sigterm_at_ten_points_on_docker(docker_engine: None, tmp_path: Path, point: str) -> None:
    assert interrupt(point, signal.SIGTERM, tmp_path / "run", "docker") == []
