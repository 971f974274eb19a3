"""The time-wait experiment, run once on netns (it watches a TIME_WAIT for over a minute):
it passes, its claim fails on snapshots where the TIME_WAIT goes too soon or never goes,
and the watch's pace is as documented."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

import pytest

from lab.evidence.folder import Evidence
from lab.report.claim_pictures import claim_pictures
from lab.run.watch import watch_times
from lab.spec.topology import load_topology
from tests.experiments.conftest import Runs, _require, _run
from tests.experiments.evidence_edit import judge

NAME = "time-wait"
_ROW = re.compile(r"^(TIME-WAIT|tcp .*TIME_WAIT).*\n", re.MULTILINE)


@pytest.fixture(scope="module")
def time_wait_run(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    _require("netns")
    base = tmp_path_factory.mktemp("time-wait")
    return {NAME: (base / NAME, *_run(NAME, base / NAME, "netns"))}


def _copy(runs: Runs, tmp_path: Path) -> Path:
    dst = tmp_path / NAME
    shutil.copytree(runs[NAME][0], dst)
    return dst


def _watch(folder: Path) -> list[tuple[str, float]]:
    doc = json.loads((folder / "run.json").read_text())
    return [(w["phase"], w["time"]) for w in doc["watch"]]


def _edit_watch(folder: Path, phases: list[str], add: str | None) -> None:
    """Drop the TIME_WAIT rows of the client's snapshots of ``phases``, or (``add``) copy
    the row of the 'after' snapshot into them."""
    snaps = folder / "client" / "snapshots"
    for kind in ("ss", "netstat"):
        row = _ROW.search((snaps / f"after.{kind}.txt").read_text())
        assert row is not None
        for phase in phases:
            path = snaps / f"{phase}.{kind}.txt"
            text = _ROW.sub("", path.read_text())
            path.write_text(text + row.group(0) if add else text)


@pytest.mark.slow
@pytest.mark.netns
def test_time_wait_lasts_2msl(root: None, time_wait_run: Runs) -> None:
    _, status, summary, stderr = time_wait_run[NAME]
    assert summary is not None, stderr
    checks = {c["name"]: c for sc in summary["scenarios"] for c in sc["checks"]}
    assert status == 0 and summary["passed"], [c for c in checks.values() if not c["passed"]]
    assert "lasted about" in checks["TIME_WAIT lasts 2MSL"]["detail"]


@pytest.mark.slow
@pytest.mark.netns
def test_time_wait_2msl_fails_when_it_goes_too_soon(
    root: None, time_wait_run: Runs, tmp_path: Path
) -> None:
    folder = _copy(time_wait_run, tmp_path)
    watch = _watch(folder)
    # From 30 s into the watch on, the client's TIME_WAIT is no longer there.
    _edit_watch(folder, [p for p, t in watch if t - watch[0][1] >= 30], add=None)
    check = judge(folder, "active-close", "time-wait-2msl")
    assert not check.passed and "not about 60 s" in check.detail, check.detail


@pytest.mark.slow
@pytest.mark.netns
def test_time_wait_2msl_fails_when_it_never_goes(
    root: None, time_wait_run: Runs, tmp_path: Path
) -> None:
    folder = _copy(time_wait_run, tmp_path)
    _edit_watch(folder, [p for p, _ in _watch(folder)], add="row")
    check = judge(folder, "active-close", "time-wait-2msl")
    assert not check.passed and "still in TIME_WAIT at the last watch" in check.detail


def test_watch_is_paced_from_its_start() -> None:
    taken = list(watch_times(0.05, every=0.01))
    assert [p for p, _ in taken] == [f"watch-{k:03d}" for k in range(1, 6)]
    assert all(b > a for (_, a), (_, b) in itertools.pairwise(taken))


@pytest.mark.slow
@pytest.mark.netns
def test_time_wait_picture_shows_it_go(root: None, time_wait_run: Runs) -> None:
    folder = time_wait_run[NAME][0]
    topo = load_topology(folder / "topology.yaml", sources=False)
    html = claim_pictures(Evidence.load(folder), topo, topo.scenarios[0])
    assert 'class="tw-on"' in html and 'class="tw-off"' in html and "gone by +" in html
