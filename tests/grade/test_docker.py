"""``lab grade`` on Docker: the submission built inside the node image and graded there
like on netns, and nothing of the run left behind."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.grade.util import GRADE, STUDENT, assert_held_first_client, class_folder, grade


@pytest.mark.slow
def test_a_submission_is_graded_on_docker(docker_engine: None, tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = [str(STUDENT / f) for f in ("server.c", "wrap.c", "wrap.h")]
    graded = grade(*files, "--as", "fork", "--backend", "docker", "--out", str(out))
    assert graded.failed() == {}, graded.stderr[-2000:]
    assert graded.code == 0
    assert isinstance(graded.doc, dict) and graded.doc["backend"] == "docker"
    # The server runs under a uid of the run's own, not root's, and its node can still
    # count its descriptors: at least stdin, stdout, stderr and the listening socket,
    # before the hostile cases and after.
    facts = json.loads((out / "grade-run.json").read_text())
    assert facts["baseline"]["fds"] >= 4, facts["baseline"]
    assert facts["cases"] and all(c["health"]["fds"] >= 4 for c in facts["cases"]), facts
    run_id = json.loads((out / "run.json").read_text())["run_id"]
    assert containers_of(run_id) == ""


@pytest.mark.slow
def test_a_server_that_stops_answering_is_shown_the_connection_it_holds_on_docker(
    docker_engine: None, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    graded = grade(
        str(GRADE / "no_eof.py"), "--as", "iterative", "--backend", "docker", "--out", str(out)
    )
    assert_held_first_client(graded)
    assert containers_of(json.loads((out / "run.json").read_text())["run_id"]) == ""


def containers_of(run_id: str) -> str:
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=socket-lab.run={run_id}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


# A small class on Docker: the good one, one that does not compile, one that crashes.
CLASS = {
    "good": [STUDENT / "server.c", STUDENT / "wrap.c", STUDENT / "wrap.h"],
    "broken": [STUDENT / "broken.c"],
    "crash": [GRADE / "crash_first.py"],
}


@pytest.mark.slow
def test_a_class_is_graded_on_docker(docker_engine: None, tmp_path: Path) -> None:
    folder = class_folder(tmp_path / "class", CLASS)
    out = tmp_path / "out"
    graded = grade(
        str(folder), "--as", "fork", "--backend", "docker", "--out", str(out), "--jobs", "2",
        timeout=600,
    )  # fmt: skip
    assert graded.code == 1, graded.stderr[-3000:]
    assert isinstance(graded.doc, list)
    by_name = {g["submission"]: g for g in graded.doc}
    assert sorted(by_name) == sorted(CLASS)
    assert by_name["good"]["passed"] is True, by_name["good"]["verdict"]
    # Failed and judged: what follows a failure (a build that never listened) is not judged.
    failed = {name: {r["claim"] for r in g["rows"] if not r["passed"] and r["judged"]}
              for name, g in by_name.items()}  # fmt: skip
    assert failed["broken"] == {"builds and listens"}, failed
    assert "service ran until stopped" in failed["crash"], failed
    assert 'href="good/grade.html"' in (out / "index.html").read_text()
    for name in CLASS:
        run = out / name / "run.json"
        if run.is_file():
            assert containers_of(json.loads(run.read_text())["run_id"]) == ""
