"""``lab grade`` for real on netns: each bad submission ends its own row with a clear
verdict and leaves nothing behind (good ones per model: test_examples_netns)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.grade.util import GRADE, STUDENT, assert_held_first_client, grade
from tests.leftovers import netns_objects


def assert_nothing_left(out: Path) -> None:
    run = out / "run.json"
    if run.is_file():
        run_id = json.loads(run.read_text())["run_id"]
        assert netns_objects(run_id) == []


def test_compiler_messages_are_the_verdict(root: None, tmp_path: Path) -> None:
    out = tmp_path / "out"
    graded = grade(str(STUDENT / "broken.c"), "--as", "fork", "--out", str(out))
    assert graded.code == 1
    failed = graded.failed()
    assert "broken.c:4:34: error: expected" in failed["builds and listens"]
    assert set(failed) == {"builds and listens"}  # the rest: not reached, not judged
    rows = graded.rows()
    assert all(r["judged"] is False for c, r in rows.items() if c != "builds and listens")
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


@pytest.mark.slow
def test_a_server_that_stops_answering_is_shown_the_connection_it_holds(
    root: None, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    graded = grade(str(GRADE / "no_eof.py"), "--as", "iterative", "--out", str(out))
    assert_held_first_client(graded)
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
