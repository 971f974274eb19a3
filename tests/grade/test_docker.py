"""``lab grade`` on Docker: the submission built inside the node image and graded there
like on netns, and nothing of the run left behind."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.grade.util import STUDENT, grade


@pytest.mark.slow
def test_a_submission_is_graded_on_docker(docker_engine: None, tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = [str(STUDENT / f) for f in ("server.c", "wrap.c", "wrap.h")]
    graded = grade(*files, "--as", "fork", "--backend", "docker", "--out", str(out))
    assert graded.failed() == {}, graded.stderr[-2000:]
    assert graded.code == 0
    assert isinstance(graded.doc, dict) and graded.doc["backend"] == "docker"
    run_id = json.loads((out / "run.json").read_text())["run_id"]
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=socket-lab.run={run_id}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert left.strip() == ""
