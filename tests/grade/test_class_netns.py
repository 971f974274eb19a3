"""A class folder on netns: nine submissions, the good one and the bad ones, each graded
in its own process; one row each with its own verdict, grades.csv, index.html, and
nothing left running."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.grade.util import GRADE, STUDENT, class_folder, grade, junit_cases
from tests.leftovers import netns_objects

CLASS = {
    "good": [STUDENT / "server.c", STUDENT / "wrap.c", STUDENT / "wrap.h"],
    "broken": [STUDENT / "broken.c"],
    "silent": [STUDENT / "silent.c"],
    "other-port": [GRADE / "other_port.py"],
    "crash": [GRADE / "crash_first.py"],
    "bomb": [GRADE / "bomb.c"],
    "chatty": [STUDENT / "chatty.c", STUDENT / "wrap.c", STUDENT / "wrap.h"],
    "sleeper": [GRADE / "sleeper.py"],
    "junk": [GRADE / "junk.py"],
}
# The claim each bad submission must fail, and words of its evidence.
EXPECTED = {
    "broken": ("builds and listens", "error: expected"),
    "silent": ("builds and listens", "did not listen on tcp port 9999"),
    "other-port": ("builds and listens", "did not listen on tcp port 9999"),
    "crash": ("service ran until stopped", "ended before the lab stopped it"),
    "bomb": ("no process without a client", "stopped by the process limit"),
    "chatty": ("log within 4 MiB", "cut at 4194304 bytes"),
    "sleeper": ("replies: 1 client", ""),
    "junk": ("replies: 1 client", ""),
}
TIME_LIMIT = 240.0
JOBS = 2  # graded at once, each in its own process, run and uid


@pytest.mark.slow
def test_a_class_is_graded_one_isolated_row_each(root: None, tmp_path: Path) -> None:
    folder = class_folder(tmp_path / "class", CLASS)
    out, junit = tmp_path / "out", tmp_path / "class.xml"
    graded = grade(
        str(folder), "--as", "fork", "--out", str(out), "--junit", str(junit),
        "--time-limit", str(TIME_LIMIT), "--jobs", str(JOBS),
        timeout=len(CLASS) * (TIME_LIMIT + 90) / JOBS,
    )  # fmt: skip
    assert graded.code == 1, graded.stderr[-3000:]
    assert isinstance(graded.doc, list)
    by_name = {g["submission"]: g for g in graded.doc}
    assert sorted(by_name) == sorted(CLASS)
    assert by_name["good"]["passed"] is True, by_name["good"]["verdict"]
    for name, (claim, words) in EXPECTED.items():
        rows = {r["claim"]: r for r in by_name[name]["rows"]}
        assert by_name[name]["passed"] is False
        assert claim in rows and not rows[claim]["passed"], (name, by_name[name]["verdict"])
        assert words in rows[claim]["evidence"], (name, rows[claim]["evidence"])

    with (out / "grades.csv").open() as csv_file:
        table = list(csv.DictReader(csv_file))
    assert [r["submission"] for r in table] == sorted(CLASS)
    assert {r["submission"]: r["passed"] for r in table}["good"] == "yes"
    index = (out / "index.html").read_text()
    for name in CLASS:
        assert f'href="{name}/grade.html"' in index
        assert (out / name / "grade.html").is_file()
        run = out / name / "run.json"
        if run.is_file():
            assert netns_objects(json.loads(run.read_text())["run_id"]) == []
    cases = junit_cases(junit)
    assert cases[("good (fork)", "children reaped")] is None
    assert "error: expected" in str(cases[("broken (fork)", "builds and listens")])


def test_a_submission_over_its_time_limit_is_stopped_and_torn_down(
    root: None, tmp_path: Path
) -> None:
    folder = class_folder(tmp_path / "class", {"sleeper": [GRADE / "sleeper.py"]})
    out = tmp_path / "out"
    graded = grade(str(folder), "--as", "fork", "--out", str(out), "--time-limit", "8")
    assert graded.code == 1
    assert isinstance(graded.doc, list) and len(graded.doc) == 1
    rows = {r["claim"]: r for r in graded.doc[0]["rows"]}
    assert rows["within the time limit"]["passed"] is False
    assert rows["within the time limit"]["evidence"] == "stopped after 8 s"
    assert graded.doc[0]["verdict"] == "over the time limit of 8 s"
    run = out / "sleeper" / "run.json"
    assert run.is_file()  # stopped like Ctrl-C: its evidence so far is kept
    assert netns_objects(json.loads(run.read_text())["run_id"]) == []
    assert "sleeper" in (out / "grades.csv").read_text()
    assert "stopped after 8 s" in (out / "sleeper" / "grade.html").read_text()
