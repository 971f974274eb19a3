"""Running ``lab grade`` from the tests, and reading back what it wrote."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.labcli import lab

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STUDENT = FIXTURES / "student"  # students' programs (tests/userprog)
GRADE = FIXTURES / "grade"  # submissions made for lab grade, good and bad

__all__ = [
    "GRADE", "STUDENT", "Graded", "assert_held_first_client", "class_folder", "failed_claims",
    "grade", "junit_cases",
]  # fmt: skip


class Graded:
    """A finished ``lab grade``: its exit status, its JSON and its stderr."""

    def __init__(self, code: int, doc: object, stderr: str) -> None:
        self.code = code
        self.doc = doc
        self.stderr = stderr

    def rows(self) -> dict[str, dict[str, object]]:
        assert isinstance(self.doc, dict), self.stderr[-2000:]
        return {str(r["claim"]): r for r in self.doc["rows"]}

    def failed(self) -> dict[str, str]:
        """The claims that failed (not those "not judged", downstream of a failure)."""
        assert isinstance(self.doc, dict), self.stderr[-2000:]
        return failed_claims(self.doc)


def failed_claims(doc: Mapping[str, object]) -> dict[str, str]:
    """One submission's failed claims (not those "not judged") and their evidence."""
    rows = doc["rows"]
    assert isinstance(rows, list)
    return {str(r["claim"]): str(r["evidence"]) for r in rows if not r["passed"] and r["judged"]}


def assert_held_first_client(graded: Graded) -> None:
    """The grade of ``no_eof.py`` (an iterative server that takes EOF for "nothing yet"):
    it answers the first client, then the first hostile case is not answered, and the
    evidence names the one connection it still sits on, the first client's, which closed
    long ago (the server's end in CLOSE-WAIT); the queued ones are not its."""
    assert graded.code == 1, graded.stderr[-2000:]
    failed = graded.failed()
    assert "replies: 1 client" not in failed
    hostile = failed["hostile: line_1mib"]
    assert "a normal client was not answered" in hostile
    held = re.search(r"held (\d+) connection\(s\) open on its port: (.*)", hostile)
    assert held is not None, hostile
    assert held[1] == "1" and re.fullmatch(r"CLOSE-WAIT 10\.[\d.]+:\d+", held[2]), hostile


def grade(*args: str, timeout: float = 900) -> Graded:
    proc = lab("grade", *args, "--json", "--quiet", timeout=timeout)
    doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    return Graded(proc.returncode, doc, proc.stderr)


def junit_cases(path: Path) -> dict[tuple[str, str], str | None]:
    """(suite, testcase) -> the failure message, None for a pass; parsed with xml.etree."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    out: dict[tuple[str, str], str | None] = {}
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(cases)
        failures = [c for c in cases if c.find("failure") is not None]
        assert int(suite.get("failures", "-1")) == len(failures)
        for case in cases:
            failure = case.find("failure")
            key = (suite.get("name", ""), case.get("name", ""))
            out[key] = None if failure is None else failure.get("message", "")
    return out


def class_folder(folder: Path, submissions: Mapping[str, Sequence[Path]]) -> Path:
    """A class folder: one sub-folder per submission, holding copies of its files."""
    for name, files in submissions.items():
        (folder / name).mkdir(parents=True)
        for f in files:
            shutil.copy(f, folder / name / f.name)
    return folder
