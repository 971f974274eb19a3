"""`lab report DIR` on a damaged or hostile run.json: one line naming the file and what is
wrong with it, exit 2, and not one byte of the folder changed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from lab.report.record import Summary
from lab.spec.codec import RecordError
from tests.labcli import ROOT, lab
from tests.records.test_records import _run_doc

GOOD = json.dumps(_run_doc(), indent=2)


def _with(**changes: object) -> str:
    return json.dumps({**_run_doc(), **changes})


CASES = {
    "truncated": (GOOD[: len(GOOD) // 2], "cut short"),
    "invalid": ("{run: yes}", "not valid JSON at line 1 column 2"),
    "list": ("[1, 2, 3]", "holds a JSON list, not an object"),
    "string": ('"run"', "holds a JSON string, not an object"),
    "deep": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "deep-object": (
        _with(scenarios={"x": {"service": "echo", "clients": {}, "extra": "[" * 900}}),
        "scenarios.x.extra: unexpected key",
    ),
    "deep-but-parsable": ('{"a": ' + "[" * 500 + "]" * 500 + "}", "more than 64 levels"),
    "bigint": (GOOD.replace('"pid": 42', '"pid": ' + "7" * 5000), "more than 4300 digits"),
    "weird-backend": (_with(backend={"weird": True}), "backend: expected a string"),
    "weird-services": (_with(services={"echo": {"weird": True}}), "services.echo.weird"),
    "weird-timings": (_with(timings={"up": "soon"}), "timings.up: expected a number"),
    "not-utf8": ("", "not UTF-8 text"),
}


def _folder(tmp_path: Path, text: str | bytes) -> Path:
    out = tmp_path / "results"
    out.mkdir()
    (out / "run.json").write_bytes(text.encode() if isinstance(text, str) else text)
    shutil.copyfile(ROOT / "topologies" / "default.yaml", out / "topology.yaml")
    (out / "server").mkdir()
    (out / "server" / "eth0.pcap").write_bytes(b"\xd4\xc3\xb2\xa1 evidence")
    return out


def _digest(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``: a file's hash, a link's target, a folder's name."""
    seen = {}
    for p in sorted(folder.rglob("*")):
        key = str(p.relative_to(folder))
        if p.is_symlink():
            seen[key] = "-> " + os.readlink(p)
        elif p.is_file():
            seen[key] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            seen[key] = "dir"
    return seen


def _assert_refused(out: Path, said: str) -> None:
    before = _digest(out)
    done = lab("report", str(out), timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"lab: {out / 'run.json'}: "), lines[0]
    assert said in lines[0], lines[0]
    assert _digest(out) == before


@pytest.mark.broken_results
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_damaged_run_json_is_one_line_and_the_folder_is_untouched(
    tmp_path: Path, case: str
) -> None:
    text, said = CASES[case]
    data: str | bytes = text or GOOD.encode().replace(b'"abc123"', b'"abc\xff23"')
    _assert_refused(_folder(tmp_path, data), said)


@pytest.mark.broken_results
def test_a_run_json_linked_to_an_endless_device_is_refused_unread(tmp_path: Path) -> None:
    out = _folder(tmp_path, "")
    (out / "run.json").unlink()
    (out / "run.json").symlink_to("/dev/zero")
    _assert_refused(out, "not a regular file (a character device)")


@pytest.mark.broken_results
def test_a_run_json_that_is_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    out = _folder(tmp_path, "")
    (out / "run.json").unlink()
    os.mkfifo(out / "run.json")
    _assert_refused(out, "not a regular file (a FIFO)")


def test_a_damaged_summary_json_is_a_record_error(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RecordError, match=r"summary\.json: nested too deeply"):
        Summary.load(tmp_path)
