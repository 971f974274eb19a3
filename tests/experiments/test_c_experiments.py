"""The course's C programs on the wire, on network namespaces: topologies/c.yaml, every
experiment with ``--impl c``, and the spot-the-bug experiments, where the claim that
catches each bug fails on the buggy variant (reported as expected, with its evidence)
and passes on the correct one. Each runs as a user runs it: ``lab experiment NAME``."""

from __future__ import annotations

import json
import shutil
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from lab.data import experiment_impls, experiment_names
from lab.evidence.analysis.snapshots import parse_ps, zombies
from tests.labcli import lab
from tests.results_schema import assert_valid_results

C_NAMES = [n for n in experiment_names() if "c" in experiment_impls(n) and not n.startswith("bug-")]
BUG_NAMES = [n for n in experiment_names() if n.startswith("bug-")]

# The claim (or built-in check) that catches each bug, as the summary names it on the buggy
# scenario, and the scenario of the correct variant that must pass it plainly.
CAUGHT = {
    "bug-thread-table": [("buggy", "service ran until stopped", "correct", "killed by SIGSEGV")],
    "bug-dictionary": [
        ("buggy-lookup", "UTF-8 on the wire", "correct-lookup", "server sent b'\\n\\n\\n\\n'"),
    ],
    "bug-client-read": [("buggy", "early close noticed", "correct", "having said nothing")],
}

Result = tuple[Path, int, dict[str, Any] | None, str]
ALONE = "bug-thread-table"
_DONE: dict[str, Result] = {}


def _run(args: list[str], out: Path) -> Result:
    done = lab(*args, "--backend", "netns", "--out", str(out), "--json", "--quiet", timeout=240)
    try:
        summary = json.loads(done.stdout)
    except ValueError:
        summary = None
    if (out / "run.json").is_file():
        assert_valid_results(out)
    return out, done.returncode, summary, done.stderr[-2000:]


def _all(base: Path) -> dict[str, Result]:
    """Every C run, four at a time (each has its own subnets), once per session; then
    bug-thread-table alone: its 1,200 connections' threads count against the process limit
    of the one unprivileged user that every user program runs as, shared with the others."""
    if not _DONE:
        jobs = {f"c:{n}": ["experiment", n, "--impl", "c"] for n in C_NAMES}
        jobs |= {n: ["experiment", n] for n in BUG_NAMES if n != ALONE}
        jobs["c.yaml"] = ["run", "topologies/c.yaml"]
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {
                k: pool.submit(_run, argv, base / k.replace(":", "-")) for k, argv in jobs.items()
            }
            _DONE.update({k: f.result() for k, f in futures.items()})
        _DONE[ALONE] = _run(["experiment", ALONE], base / ALONE)
    return _DONE


@pytest.fixture(scope="module")
def c_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    return _all(tmp_path_factory.mktemp("c-runs"))


def _failed(summary: dict[str, Any]) -> list[str]:
    return [
        f"{sc['name']}: {c['name']}: {c['detail']}"
        for sc in summary["scenarios"]
        for c in sc["checks"]
        if not c["passed"]
    ]


def _check(summary: dict[str, Any], scenario: str, prefix: str) -> dict[str, Any]:
    (sc,) = [s for s in summary["scenarios"] if s["name"] == scenario]
    (check,) = [c for c in sc["checks"] if c["name"].startswith(prefix)]
    return check  # type: ignore[no-any-return]


def test_the_c_implementations_are_listed() -> None:
    assert set(C_NAMES) == {
        "close", "dictionary", "fork", "handshake", "iterative", "routing", "thread", "udp",
        "window",
    }  # fmt: skip
    assert set(BUG_NAMES) == {*CAUGHT, "bug-sigchld-race"}
    listing = lab("experiment", "--list")
    assert listing.returncode == 0
    lines = {line.split()[0]: line.split()[1] for line in listing.stdout.splitlines()}
    assert lines["fork"] == "python,c" and lines["errors"] == "python"
    assert all(lines[n] == "c" for n in BUG_NAMES)


def test_impl_without_a_twin_is_refused_before_anything_starts() -> None:
    done = lab("experiment", "errors", "--impl", "c")
    assert done.returncode == 2
    assert done.stderr.startswith("lab: experiment 'errors' has no c implementation (it has: ")
    done = lab("experiment", "bug-dictionary", "--impl", "python")
    assert done.returncode == 2 and "(it has: c)" in done.stderr


@pytest.mark.parametrize("name", ["c.yaml", *(f"c:{n}" for n in C_NAMES), *BUG_NAMES])
def test_c_run_passes_every_check(root: None, c_runs: dict[str, Result], name: str) -> None:
    folder, status, summary, stderr = c_runs[name]
    assert summary is not None, stderr
    assert _failed(summary) == [] and status == 0 and summary["passed"], stderr
    topology = (folder / "topology.yaml").read_text()
    assert "lab:c/" in topology  # the C programs ran, not the Python ones
    # Each C program was built in the run and kept with its build log.
    assert any((folder / "programs").iterdir())


@pytest.mark.parametrize("name", sorted(CAUGHT))
def test_the_claim_that_catches_the_bug_fails_on_the_buggy_variant_only(
    root: None, c_runs: dict[str, Result], name: str
) -> None:
    _, _, summary, stderr = c_runs[name]
    assert summary is not None, stderr
    for buggy, check, correct, evidence in CAUGHT[name]:
        caught = _check(summary, buggy, check)
        assert caught["name"] == f"{check} (bug)" and caught["passed"], caught
        assert caught["detail"].startswith("fails as expected, this is the bug: ")
        assert evidence in caught["detail"], caught
        plain = _check(summary, correct, check)
        assert plain["name"] == check and plain["passed"], plain


def test_the_race_is_reported_either_way(root: None, c_runs: dict[str, Result]) -> None:
    """Whether the zombie showed this run or not, the buggy scenario says which, with the
    process snapshot's count; the correct server reaps its child."""
    folder, _, summary, stderr = c_runs["bug-sigchld-race"]
    assert summary is not None, stderr
    race = _check(summary, "buggy", "children reaped")
    assert race["name"] == "children reaped (bug, a race)" and race["passed"]
    pid = json.loads((folder / "run.json").read_text())["services"]["buggy"]["pid"]
    after = parse_ps((folder / "server" / "snapshots" / "after.ps.txt").read_text())
    way = "lost" if zombies(after, pid) else "won"
    assert race["detail"].startswith(f"the race was {way} this run"), race
    assert "zombie children of pid" in race["detail"]
    plain = _check(summary, "correct", "children reaped")
    assert plain == {**plain, "name": "children reaped", "passed": True}


def test_words_sent_together_are_a_race_on_the_buggy_dictionary(
    root: None, c_runs: dict[str, Result]
) -> None:
    """Whether words share the buggy server's read()s is timing: reported either way, with
    the lines each side carried; the correct server answers every line."""
    _, _, summary, stderr = c_runs["bug-dictionary"]
    assert summary is not None, stderr
    race = _check(summary, "buggy-packed", "one reply per line")
    assert race["name"] == "one reply per line (bug, a race)" and race["passed"], race
    if race["detail"].startswith("the race was lost this run"):
        assert "the client sent 30 lines" in race["detail"], race
    plain = _check(summary, "correct-packed", "one reply per line")
    assert plain["name"] == "one reply per line" and plain["passed"], plain


def test_a_damaged_capture_never_passes_as_the_bug_shown(
    root: None, c_runs: dict[str, Result], tmp_path: Path
) -> None:
    src = c_runs["bug-dictionary"][0]
    copy = tmp_path / "damaged"
    shutil.copytree(src, copy)
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    pcap = copy / "server" / "eth0.pcap"
    pcap.write_bytes(_cut_inside_a_record(pcap.read_bytes()))
    done = lab("report", str(copy), "--json")
    assert done.returncode == 1, done.stderr
    caught = _check(json.loads(done.stdout), "buggy-lookup", "UTF-8 on the wire")
    assert caught["name"] == "UTF-8 on the wire (bug)" and not caught["passed"]
    assert "not judged on damaged evidence" in caught["detail"]


def _cut_inside_a_record(data: bytes) -> bytes:
    """The capture cut 7 bytes into the header of the record that holds its middle byte:
    a cut that lands between two records would leave a shorter capture, not a damaged one."""
    order = "<" if data[3] == 0xA1 else ">"  # the magic's last byte, written little-endian
    start = 24  # the file's own header
    while True:
        (length,) = struct.unpack_from(order + "I", data, start + 8)
        end = start + 16 + length
        if end > len(data) // 2:
            return data[: start + 7]
        start = end
