"""The grade's parts that need no lab: weights, rows of a run that stopped early, the
JUnit file read back, the class's CSV, and bad input refused with exit 2."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from lab.errors import UsageError
from lab.grade.flow import HELD_FACT, CaseResult, GradeFacts, Health, running_pids
from lab.grade.output import grade_table, grades_csv, junit_xml
from lab.grade.score import RAN, Grade, Row, expected_claims, score
from lab.grade.weights import read_weights
from lab.report.record import ScenarioVerdict, Summary
from lab.run.record import (
    ClientRecord,
    ClientResult,
    ConnectionOutcome,
    RunRecord,
    ScenarioRecord,
    ServiceRecord,
)
from lab.verdict.check import Check
from tests.grade.util import GRADE, junit_cases
from tests.labcli import lab


def test_default_weights_name_every_claim_of_every_model() -> None:
    weights = read_weights()
    for model in ("fork", "thread", "iterative", "udp", "dict"):
        named = [c for c in expected_claims(model, model != "udp") if c in weights.claims]
        unnamed = [c for c in expected_claims(model, model != "udp") if c not in weights.claims]
        assert all(c.startswith("hostile: ") for c in unnamed), unnamed
        assert named


def test_a_weights_file_overrides_claim_by_claim(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"default": 1, "claims": {"children reaped": 40, "hostile": 3}}))
    weights = read_weights(path)
    assert weights.of("children reaped") == 40
    assert weights.of("hostile: churn") == 3  # a family's weight
    assert weights.of("replies: 1 client") == 10  # the default file's
    assert weights.of("something new") == 1


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("{", "w.json:1:2: not JSON"),
        ("[]", "weights must be an object"),
        ('{"claims": {"children reaped": -1}}', "claims.children reaped: points must be"),
        ('{"claims": {"x": true}}', "claims.x: points must be"),
        ('{"default": "5"}', "default: points must be"),
    ],
)
def test_a_bad_weights_file_is_located(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "w.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=where.replace(".", r"\.")):
        read_weights(path)


def test_a_run_that_never_listened_lists_every_claim_failed_with_why() -> None:
    error = "service graded (submission) on server exited before listening: boom"
    rows = score("fork", read_weights(), None, None, GradeFacts(), error)
    assert [r.claim for r in rows] == expected_claims("fork", True)
    assert rows[0].evidence == error
    assert not any(r.passed for r in rows)
    assert all(r.points == 0 for r in rows)
    assert all("not reached" in r.evidence for r in rows[1:])


def test_hostile_cases_judge_zombies_descriptors_memory_and_survival() -> None:
    base = Health(alive=True, zombies=0, children=0, fds=4, rss_kib=1000)
    facts = GradeFacts(
        baseline=base,
        cases=[
            CaseResult("nul_bytes", [], {}, Health(True, 0, 0, 4, 1000)),
            CaseResult("line_1mib", [], {}, Health(True, 0, 0, 9, 1000)),
            CaseResult("churn", [], {}, Health(True, 3, 0, 4, 1000)),
            CaseResult("no_newline", [], {}, Health(True, 0, 0, 4, 1000 + (65 << 10))),
            CaseResult(
                "idle_1000", ["afterwards, a normal client was not answered: x"], {}, Health(False)
            ),
        ],
    )
    rows = {r.claim: r for r in score("thread", read_weights(), None, None, facts, None)}
    assert rows["hostile: nul_bytes"].passed
    assert "9 open descriptors (were 4)" in rows["hostile: line_1mib"].evidence
    assert rows["hostile: churn"].evidence == "3 zombie children (were 0)"
    assert "resident memory" in rows["hostile: no_newline"].evidence
    assert "the server is gone" in rows["hostile: idle_1000"].evidence
    assert "no longer answered after hostile: idle_1000" in rows["hostile: many_lines"].evidence


def test_descriptors_that_could_not_be_counted_are_said_unknown_not_zero() -> None:
    """An unreadable /proc/PID/fd (a process of another user, without the capability to
    look) counts nothing: neither a leak against a known baseline, nor "0 fds"."""
    base = Health(alive=True, fds=None, rss_kib=1000)
    facts = GradeFacts(
        baseline=base,
        cases=[
            CaseResult("nul_bytes", [], {}, Health(True, 0, 0, None, 1000)),
            CaseResult("line_1mib", [], {}, Health(True, 0, 0, 40, 1000)),
        ],
    )
    rows = {r.claim: r for r in score("thread", read_weights(), None, None, facts, None)}
    assert rows["hostile: nul_bytes"].passed
    assert rows["hostile: nul_bytes"].evidence == "answered after; 0 zombies, ? fds, 1000 KiB"
    assert rows["hostile: line_1mib"].passed  # 40 against an unknown baseline: no leak shown
    assert Health(True, fds=40).more_fds(Health(True, fds=4), slack=8)
    assert not Health(True, fds=None).more_fds(Health(True, fds=4))


def test_a_server_that_stopped_answering_is_shown_the_first_connections_it_held() -> None:
    base = Health(alive=True, zombies=0, children=0, fds=4, rss_kib=1000)
    held = [f"ESTAB 10.0.0.11:{40000 + i}" for i in range(7)]
    stuck = ["afterwards, a normal client was not answered: TimeoutError: timed out"]
    cases = [CaseResult("split_line", stuck, {HELD_FACT: held}, Health(True, 0, 0, 11, 1000))]
    facts = GradeFacts(baseline=base, cases=cases)
    rows = {r.claim: r for r in score("iterative", read_weights(), None, None, facts, None)}
    said = rows["hostile: split_line"].evidence
    assert not rows["hostile: split_line"].passed
    assert "the server then held 7 connection(s) open on its port: ESTAB 10.0.0.11:40000," in said
    assert "10.0.0.11:40004" in said and "10.0.0.11:40005" not in said  # the first five only


def test_a_fork_bomb_is_said_to_be_stopped_by_the_process_limit() -> None:
    facts = GradeFacts(baseline=Health(alive=True, children=1497, fds=4))
    rows = {r.claim: r for r in score("fork", read_weights(), None, None, facts, None)}
    row = rows["no process without a client"]
    assert not row.passed
    assert row.evidence == (
        "1497 live children with no client connected; stopped by the process limit (1500)"
    )


def _grade(name: str, failing: str | None) -> Grade:
    rows = score("udp", read_weights(), None, None, GradeFacts(), None)
    rows = [
        type(r)(
            r.claim,
            r.claim != failing,
            r.evidence,
            r.max_points * (r.claim != failing),
            r.max_points,
        )
        for r in rows
    ]
    return Grade(name, "udp", "netns", tuple(rows), 1.5, f"/r/{name}", "v")


def test_junit_has_one_testcase_per_claim_and_the_evidence_in_the_failure(
    tmp_path: Path,
) -> None:
    good, bad = _grade("alice", None), _grade("bob", "datagram boundaries")
    path = tmp_path / "j.xml"
    path.write_text(junit_xml([good, bad]))
    cases = junit_cases(path)
    assert len(cases) == len(good.rows) + len(bad.rows)
    failing = next(r for r in bad.rows if r.claim == "datagram boundaries")
    assert cases[("bob (udp)", "datagram boundaries")] == failing.evidence.splitlines()[0]
    assert [k for k, v in cases.items() if v is not None] == [("bob (udp)", "datagram boundaries")]


def test_table_and_csv_say_pass_fail_and_points() -> None:
    bad = _grade("bob, jr", "datagram boundaries")
    table = grade_table(bad)
    assert "datagram boundaries" in table and "FAIL" in table.splitlines()[-2]
    rows = list(csv.reader(io.StringIO(grades_csv([_grade("alice", None), bad]))))
    assert rows[0][:4] == ["submission", "model", "passed", "points"]
    assert rows[1][2] == "yes" and rows[2][0] == "bob, jr" and rows[2][2] == "no"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere.c", "--as", "fork"], "nowhere.c: no such file or folder"),
        ([str(GRADE / "junk.py"), "--as", "fork", "--port", "0"], "--port 0: must be 1-65535"),
        ([str(GRADE / "junk.py"), "--as", "fork", "--weights", "nowhere.json"], "nowhere.json"),
        ([str(GRADE.parent), "--as", "fork", "--time-limit", "0"], "--time-limit 0: must be > 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    proc = lab("grade", *args, "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_server_dead_before_the_hostile_clients_has_them_not_run() -> None:
    facts = GradeFacts(baseline=Health(alive=False))
    rows = {r.claim: r for r in score("thread", read_weights(), None, None, facts, None)}
    assert rows["hostile: churn"].evidence == (
        "not run: the server had exited before the hostile clients"
    )
    assert not rows["no process without a client"].passed


def _crashed_run(
    failing: dict[str, list[str]],
    crashed_in: str,
    design: str = "one process, a thread per connection",
) -> tuple[Summary, RunRecord]:
    """A run whose server ended before the lab stopped it (RAN fails in every scenario, as
    the run says it) while ``crashed_in`` ran, whose connections were refused from then
    on; ``failing``: per scenario, the other checks that failed there."""
    scenarios = [
        ScenarioVerdict(
            name,
            "graded",
            not failing.get(name),
            [
                Check(check, check != RAN and check not in failing.get(name, []), check)
                for check in ("replies", design, RAN)
            ],
        )
        for name in ("one", "fifty", "five-hundred")
    ]
    summary = Summary("grade-thread", "netns", "ab12", "now", False, scenarios=scenarios)
    record = RunRecord("ab12", "grade-thread", "netns", "now", "/tmp/x")
    for name in ("one", "fifty", "five-hundred"):
        error = "connect: ECONNREFUSED" if name == crashed_in else None
        conn = ConnectionOutcome(0, None, ["hello"], [] if error else ["HELLO"], error, False)
        result = ClientResult("client", "server:8000", [conn], int(not error), int(bool(error)))
        record.scenarios[name] = ScenarioRecord("graded", {"c1": ClientRecord(0, result, "", None)})
    record.services["graded"] = ServiceRecord(
        "server", "submission", 8000, "tcp", {}, 1, "server/log", None, True, -11
    )
    return summary, record


def test_a_crash_fails_one_claim_and_what_follows_it_is_not_judged() -> None:
    summary, record = _crashed_run({"five-hundred": ["replies"]}, "five-hundred")
    facts = GradeFacts(baseline=Health(alive=False))
    rows = {r.claim: r for r in score("thread", read_weights(), summary, record, facts, None)}
    failed = {c for c, r in rows.items() if r.failed}
    assert failed == {RAN}
    assert rows[RAN].evidence.endswith("it ended (status -11) during 500 clients")
    unjudged = {c for c, r in rows.items() if not r.judged}
    assert {"replies: 500 clients", "hostile: churn", "SIGTERM: exits, no child left"} <= unjudged
    assert rows["hostile: churn"].verdict == "not judged"
    assert rows["replies: 500 clients"].evidence == (
        "not judged: the server had crashed (status -11) during 500 clients"
    )
    assert rows["replies: 50 clients"].passed  # before the crash: judged as it was
    assert not any(r.points for r in rows.values() if not r.judged)
    xml = junit_xml([_as_grade(rows)])
    assert f'skipped="{len(unjudged)}"' in xml and 'failures="1"' in xml
    assert xml.count("<skipped ") == len(unjudged)


def test_a_failure_before_the_crash_still_fails() -> None:
    summary, record = _crashed_run(
        {"one": ["replies"], "fifty": ["replies"], "five-hundred": ["replies"]}, "fifty"
    )
    rows = {
        r.claim: r for r in score("thread", read_weights(), summary, record, GradeFacts(), None)
    }
    # Wrong replies to a connection that ran its course: failed, not the crash's doing.
    assert {c for c, r in rows.items() if r.failed} == {RAN, "replies: 1 client"}
    assert not rows["replies: 50 clients"].judged
    assert rows[RAN].evidence.endswith("during 50 clients")


def _as_grade(rows: dict[str, Row]) -> Grade:
    return Grade("s", "thread", "netns", tuple(rows.values()), 1.0, "", "x")


def test_wrong_words_fail_the_dictionary_claim_and_not_the_replies_again() -> None:
    utf8 = "UTF-8 on the wire"
    summary, record = _crashed_run(
        {"one": ["replies", utf8], "fifty": ["replies"], "five-hundred": ["replies"]},
        "five-hundred",
        design=utf8,
    )
    rows = {r.claim: r for r in score("dict", read_weights(), summary, record, GradeFacts(), None)}
    assert {c for c, r in rows.items() if r.failed} == {utf8, RAN}
    assert "see UTF-8 on the wire" in rows["replies: 1 client"].evidence
    assert "see UTF-8 on the wire" in rows["replies: 50 clients"].evidence
    assert "crashed" in rows["replies: 500 clients"].evidence
    # The same replies from an echo server are its own failure.
    rows = {
        r.claim: r for r in score("thread", read_weights(), summary, record, GradeFacts(), None)
    }
    assert rows["replies: 1 client"].failed


def test_a_server_that_never_listened_fails_that_claim_alone() -> None:
    record = RunRecord("ab12", "grade-fork", "netns", "now", "/tmp/x", failed_step="services")
    record.services["graded"] = ServiceRecord("server", "submission", 9999, "tcp", {}, 1, "l")
    summary = Summary(
        "grade-fork", "netns", "ab12", "now", False,
        scenarios=[ScenarioVerdict("one", "graded", False, [Check("run completed", False, "x")])],
    )  # fmt: skip
    error = "service graded did not listen on tcp port 9999 within 20 s"
    rows = {r.claim: r for r in score("fork", read_weights(), summary, record, GradeFacts(), error)}
    assert {c for c, r in rows.items() if r.failed} == {"builds and listens"}
    assert rows["SIGTERM: exits, no child left"].verdict == "not judged"
    assert rows["run completed"].evidence == "not judged: it never listened"


def test_children_left_after_sigterm_are_counted_and_the_first_ten_named() -> None:
    record = RunRecord("ab12", "grade-fork", "netns", "now", "/tmp/x")
    record.services["graded"] = ServiceRecord(
        "server", "submission", 9999, "tcp", {}, 1, "l", None, False, 0
    )
    left = list(range(100, 125))
    rows = score("fork", read_weights(), None, record, GradeFacts(left_after_stop=left), None)
    row = next(r for r in rows if r.claim == "SIGTERM: exits, no child left")
    assert not row.passed
    assert row.evidence == (
        "25 children left running after SIGTERM: pids "
        "[100, 101, 102, 103, 104, 105, 106, 107, 108, 109] (and 15 more)"
    )


def test_a_zombie_is_not_a_child_left_running() -> None:
    """What SIGTERM left: a server that never reaped leaves zombies to init, which may not
    have reaped them when ``ps`` looks; they have exited, so they are not counted."""
    ps = "  101 S\n  102 Z\n  103 Zs\n  104 R+\n"
    assert running_pids(ps) == [101, 104]
    assert running_pids("") == []


def test_zombies_up_to_the_process_limit_are_said_to_stop_the_forks() -> None:
    base = Health(alive=True, zombies=551, children=0, fds=4, rss_kib=1000)
    cases = [CaseResult("churn", [], {}, Health(True, 1499, 0, 4, 1000))]
    facts = GradeFacts(baseline=base, cases=cases)
    rows = {r.claim: r for r in score("fork", read_weights(), None, None, facts, None)}
    assert rows["hostile: churn"].evidence == (
        "1499 zombie children (were 551); the process limit (1500) is reached: "
        "the server can fork no more"
    )


@pytest.mark.parametrize(
    ("close_wait", "time_wait_verdict"),
    [
        (
            "1 of 1 connections still in CLOSE_WAIT on the server in its 'after' snapshot",
            "not judged",
        ),
        ("1/1 connections fail; x -> y: the server never sent its FIN", "not judged"),
        ("1/1 connections fail; x -> y: the server sent its FIN before acknowledging", "FAIL"),
    ],
)
def test_a_server_that_never_closed_fails_close_wait_and_not_time_wait_again(
    close_wait: str, time_wait_verdict: str
) -> None:
    checks = [
        Check("server passes CLOSE_WAIT", False, close_wait),
        Check("TIME_WAIT on the client", False, "1/1 connections fail; close reset"),
    ]
    scenarios = [ScenarioVerdict("one", "graded", False, checks)]
    summary = Summary("grade-fork", "netns", "ab12", "now", False, scenarios=scenarios)
    rows = {r.claim: r for r in score("fork", read_weights(), summary, None, GradeFacts(), None)}
    assert rows["server passes CLOSE_WAIT"].verdict == "FAIL"
    assert rows["TIME_WAIT on the client"].verdict == time_wait_verdict
    if time_wait_verdict == "not judged":
        assert rows["TIME_WAIT on the client"].evidence == (
            "not judged: the server never closed its side while the client was there "
            "(see server passes CLOSE_WAIT), so the client could not end in TIME_WAIT"
        )
