"""``lab grade`` for real on netns: one good submission per model scores full marks, and
each bad one ends its own row with a clear verdict and leaves nothing behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.grade.util import GRADE, STUDENT, grade, junit_cases
from tests.leftovers import netns_objects

WRAP = [str(STUDENT / "wrap.c"), str(STUDENT / "wrap.h")]

GOOD = {
    "fork": [str(STUDENT / "server.c"), *WRAP],
    "thread": [str(STUDENT / "thread_server.cpp")],
    "iterative": [str(GRADE / "iterative.py")],
    "udp": [str(STUDENT / "udp_server.py")],
    "dict": [str(GRADE / "dict_server.py")],
}


def assert_nothing_left(out: Path) -> None:
    run = out / "run.json"
    if run.is_file():
        run_id = json.loads(run.read_text())["run_id"]
        assert netns_objects(run_id) == []


@pytest.mark.parametrize("model", sorted(GOOD))
def test_a_good_submission_scores_full_marks(root: None, tmp_path: Path, model: str) -> None:
    out, junit = tmp_path / "out", tmp_path / "junit.xml"
    graded = grade(*GOOD[model], "--as", model, "--out", str(out), "--junit", str(junit))
    assert graded.failed() == {}, graded.stderr[-2000:]
    assert graded.code == 0
    doc = graded.doc
    assert isinstance(doc, dict) and doc["points"] == doc["max_points"] > 0
    claims = set(graded.rows())
    assert {"replies: 1 client", "replies: 50 clients", "replies: 500 clients"} <= claims
    assert "SIGTERM: exits, no child left" in claims
    assert any(c.startswith("hostile: ") for c in claims)
    cases = junit_cases(junit)
    assert len(cases) == len(claims) and all(v is None for v in cases.values())
    for name in ("report.html", "grade.html", "grade.json", "summary.json"):
        assert (out / name).is_file(), name
    assert_nothing_left(out)


def test_compiler_messages_are_the_verdict(root: None, tmp_path: Path) -> None:
    out = tmp_path / "out"
    graded = grade(str(STUDENT / "broken.c"), "--as", "fork", "--out", str(out))
    assert graded.code == 1
    failed = graded.failed()
    assert "broken.c:4:34: error: expected" in failed["builds and listens"]
    assert all(c == "builds and listens" or "not reached" in e for c, e in failed.items())
    assert json.loads((out / "grade.json").read_text())["passed"] is False
    assert_nothing_left(out)


def test_a_server_on_another_port_is_said_so(root: None, tmp_path: Path) -> None:
    out = tmp_path / "out"
    graded = grade(str(GRADE / "other_port.py"), "--as", "thread", "--out", str(out))
    assert graded.code == 1
    evidence = graded.failed()["builds and listens"]
    assert "did not listen on tcp port 8000 within 20 s" in evidence
    assert evidence.endswith("it listens on tcp port 8001 instead")
    assert_nothing_left(out)


@pytest.mark.slow
def test_a_server_ignoring_sigterm_loses_those_points(root: None, tmp_path: Path) -> None:
    out = tmp_path / "out"
    graded = grade(str(GRADE / "stubborn.py"), "--as", "thread", "--out", str(out))
    assert graded.code == 1
    assert graded.failed() == {
        "SIGTERM: exits, no child left": (
            "the server ignored SIGTERM: killed with SIGKILL after the grace period"
        )
    }
    assert_nothing_left(out)


def test_a_class_folder_argument_with_files_is_one_submission(tmp_path: Path) -> None:
    """A folder with sources of its own is a submission, not a class (no lab needed to
    tell: a folder of nothing but a README is refused before anything runs)."""
    folder = tmp_path / "empty-submission"
    folder.mkdir()
    (folder / "README").write_text("nothing\n")
    shutil.copy(GRADE / "junk.py", tmp_path / "junk.py")
    graded = grade(str(folder), "--as", "fork", "--out", str(tmp_path / "out"))
    assert graded.code == 2
    assert "no source file" in graded.stderr
