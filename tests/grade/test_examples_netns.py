"""Graded examples: the course's C and C++ servers score full marks, and each spot-the-bug
variant fails the claim its bug is about."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.grade.util import grade

C = Path(__file__).resolve().parents[2] / "lab" / "programs" / "c"
SHARED = [C / "serve.c", C / "serve.h", C / "wrap.c", C / "wrap.h"]
DICTIONARY = C.parent / "dictionary.tsv"  # beside the executable, where dict_server looks

SERVERS = {
    "fork": [C / "fork_server.c", *SHARED],
    "thread": [C / "thread_server.c", *SHARED],
    "iterative": [C / "iterative_server.c", *SHARED],
    "udp": [C / "udp_echo_server.c", *SHARED],
    "dict": [C / "dict_server.cpp", *SHARED, DICTIONARY],
}
# Each variant of bugs/, the claim named after its bug. bugs/fork_server.c (the SIGCHLD
# handler installed after the first fork) is a race of a few microseconds that a run
# shows a few times in a hundred at most: no run can be relied on to catch it.
BUGS = {
    "thread": ([C / "bugs" / "thread_server.c", *SHARED], "service ran until stopped"),
    "dict": ([C / "bugs" / "dict_server.cpp", *SHARED, DICTIONARY], "UTF-8 on the wire"),
}


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(SERVERS))
def test_the_course_servers_score_full_marks(root: None, tmp_path: Path, model: str) -> None:
    graded = grade(*map(str, SERVERS[model]), "--as", model, "--out", str(tmp_path / "out"))
    assert graded.failed() == {}, graded.stderr[-2000:]
    assert graded.code == 0


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(BUGS))
def test_a_bug_fails_the_claim_named_after_it(root: None, tmp_path: Path, model: str) -> None:
    files, claim = BUGS[model]
    graded = grade(*map(str, files), "--as", model, "--out", str(tmp_path / "out"))
    assert graded.code == 1
    assert claim in graded.failed(), graded.failed()
