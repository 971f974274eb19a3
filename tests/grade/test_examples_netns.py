"""Graded examples on netns, one class folder per model graded with parallel jobs: the
course's C (or C++) server and the lab's own Python server score full marks; each
spot-the-bug variant fails exactly the claims named after its bug, what its bug made fail
after it being "not judged". One grading run per model serves all of that model's
assertions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.grade.util import Graded, failed_claims, grade, junit_cases
from tests.leftovers import netns_objects

C = Path(__file__).resolve().parents[2] / "lab" / "programs" / "c"
PY = C.parent
SHARED = [C / "serve.c", C / "serve.h", C / "wrap.c", C / "wrap.h"]
DICTIONARY = PY / "dictionary.tsv"  # beside the program, where both servers look

GOOD: dict[str, dict[str, list[Path]]] = {
    "fork": {
        "course-c": [C / "fork_server.c", *SHARED],
        "lab-python": [PY / "fork_server.py"],
    },
    "thread": {
        "course-c": [C / "thread_server.c", *SHARED],
        "lab-python": [PY / "thread_server.py"],
    },
    "iterative": {
        "course-c": [C / "iterative_server.c", *SHARED],
        "lab-python": [PY / "iterative_server.py"],
    },
    "udp": {
        "course-c": [C / "udp_echo_server.c", *SHARED],
        "lab-python": [PY / "udp_echo.py"],
    },
    "dict": {
        "course-c": [C / "dict_server.cpp", *SHARED, DICTIONARY],
        "lab-python": [PY / "dict_server.py", DICTIONARY],
    },
}
# Each variant of bugs/ and the claims it fails. bugs/thread_server.c writes past its table
# at connection 257: it crashes during the 500 clients (what the crash left unanswered is
# not judged). bugs/dict_server.cpp's key, initialised from itself, is empty on a thread's
# fresh stack (no word translated: UTF-8 on the wire) and garbage on a reused one
# (std::bad_alloc, SIGABRT: the service did not run until stopped): one bug, both claims.
# bugs/fork_server.c (the SIGCHLD handler installed after the first fork) is a race of a
# few microseconds that a run shows a few times in a hundred at most: no run can be relied
# on to catch it.
BUGS: dict[str, tuple[list[Path], set[str]]] = {
    "thread": ([C / "bugs" / "thread_server.c", *SHARED], {"service ran until stopped"}),
    "dict": (
        [C / "bugs" / "dict_server.cpp", *SHARED, DICTIONARY],
        {"UTF-8 on the wire", "service ran until stopped"},
    ),
}
# Two at once: more, on a loaded two-core host, and a design claim's snapshot taken while
# the 50 connections are held can miss them. The UDP servers one at a time: a Python one
# under load drops datagrams of the 50 clients' burst.
JOBS = {"udp": 1}
TIME_LIMIT = 300.0
_graded: dict[str, tuple[Graded, Path]] = {}


def graded_class(model: str, base: Path) -> tuple[Graded, Path]:
    """The model's class folder graded once (the first test asking), its results kept for
    the module's other tests."""
    if model not in _graded:
        folder, out = base / model / "class", base / model / "out"
        members = dict(GOOD[model])
        if model in BUGS:
            members["bug"] = BUGS[model][0]
        for name, files in members.items():
            (folder / name).mkdir(parents=True)
            for f in files:
                shutil.copy(f, folder / name / f.name)
        args = ["--as", model, "--out", str(out), "--junit", str(base / model / "junit.xml")]
        args += ["--jobs", str(JOBS.get(model, 2)), "--time-limit", str(TIME_LIMIT)]
        _graded[model] = (grade(str(folder), *args, timeout=2 * TIME_LIMIT + 120), out)
    return _graded[model]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("examples")


def by_name(graded: Graded) -> dict[str, dict[str, object]]:
    assert isinstance(graded.doc, list), graded.stderr[-3000:]
    return {str(g["submission"]): g for g in graded.doc}


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(GOOD))
def test_good_servers_score_full_marks(root: None, base: Path, model: str) -> None:
    graded, out = graded_class(model, base)
    subs = by_name(graded)
    assert sorted(subs) == sorted([*GOOD[model], *(["bug"] if model in BUGS else [])])
    cases = junit_cases(base / model / "junit.xml")
    for name in GOOD[model]:
        doc = subs[name]
        assert failed_claims(doc) == {}, (name, doc["verdict"])
        assert doc["passed"] is True and doc["points"] == doc["max_points"], name
        claims = {r["claim"] for r in doc["rows"]}  # type: ignore[attr-defined]
        assert {"replies: 1 client", "replies: 50 clients", "replies: 500 clients"} <= claims
        assert "SIGTERM: exits, no child left" in claims
        assert any(c.startswith("hostile: ") for c in claims)
        mine = {k: v for k, v in cases.items() if k[0] == f"{name} ({model})"}
        assert len(mine) == len(claims) and all(v is None for v in mine.values())
        for page in ("report.html", "grade.html", "grade.json", "summary.json"):
            assert (out / name / page).is_file(), (name, page)
        run_id = json.loads((out / name / "run.json").read_text())["run_id"]
        assert netns_objects(run_id) == []
        if model != "udp":
            # "after" is taken before the hostile clients, whose churn leaves 1,000 more
            # sockets in TIME_WAIT on c3: it holds the 500 clients' at most.
            after = (out / name / "c3" / "snapshots" / "after.ss.txt").read_text()
            assert after.count("TIME-WAIT") <= 500, (name, after.count("TIME-WAIT"))
    assert graded.code == (1 if model in BUGS else 0)


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(BUGS))
def test_a_bug_fails_exactly_the_claim_named_after_it(root: None, base: Path, model: str) -> None:
    graded, _ = graded_class(model, base)
    doc = by_name(graded)["bug"]
    assert set(failed_claims(doc)) == BUGS[model][1], doc["verdict"]
    assert doc["passed"] is False
