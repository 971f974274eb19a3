"""`lab grade`'s own evidence (the rows the grading steps judge, not the run's checks) and
its refusals of bad flags, bad weights and bad hosts in Chinese: no English sentence left,
the values kept; the English as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.grade.flow import CaseResult, GradeFacts, Health
from lab.grade.output import class_table, grade_table, verdict_text
from lab.grade.score import RAN, Grade, Row, score
from lab.grade.weights import read_weights
from lab.i18n import msg, set_lang, using
from lab.report.markup import check_title
from lab.report.record import ScenarioVerdict, Summary
from lab.verdict.check import Check
from tests.grade.test_score import _crashed_run
from tests.grade.util import GRADE
from tests.i18n.words import english_words
from tests.labcli import lab

ZH = {"LANG": "zh_CN.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""}
# Values the rows quote: the hostile cases' and the models' names.
NAMES = ("nul_bytes", "line_1mib", "churn", "idle_1000", "many_lines", "boom", "graded", "server",
         "submission")  # fmt: skip


@pytest.fixture(autouse=True)
def _lang() -> Iterator[None]:
    yield
    set_lang("en")


def rows_of_every_kind() -> list[Row]:
    """Rows of runs that never listened, met hostile clients, bombed the process table,
    crashed, got the dictionary wrong, ignored SIGTERM and never closed a connection."""
    weights = read_weights()
    error = "service graded (submission) on server exited before listening: boom"
    rows = score("fork", weights, None, None, GradeFacts(), error)
    base = Health(alive=True, zombies=0, children=0, fds=4, rss_kib=1000)
    facts = GradeFacts(
        baseline=base,
        cases=[
            CaseResult("nul_bytes", [], {}, Health(True, 0, 0, 4, 1000)),
            CaseResult("line_1mib", [], {}, Health(True, 3, 0, 9, 1000 + (65 << 10))),
            CaseResult("churn", [], {}, Health(True, 1499, 0, 4, 1000)),
            CaseResult("idle_1000", [], {}, Health(False)),
        ],
    )
    rows += score("thread", weights, None, None, facts, None)
    rows += score("fork", weights, None, None, GradeFacts(Health(True, children=1497)), None)
    summary, record = _crashed_run({"five-hundred": ["replies"]}, "five-hundred")
    rows += score("thread", weights, summary, record, GradeFacts(Health(False)), None)
    utf8 = "UTF-8 on the wire"
    summary, record = _crashed_run({"one": ["replies", utf8]}, "five-hundred", design=utf8)
    rows += score("dict", weights, summary, record, GradeFacts(), None)
    record.services["graded"].ended_before_stop = False
    record.services["graded"].killed_after_grace = True
    rows += score("fork", weights, None, record, GradeFacts(left_after_stop=[41, 42]), None)
    stuck = msg("detail.close_wait.stuck", n=1, total=1, peer="10.0.0.11:40000")
    checks = [
        Check.said("server passes CLOSE_WAIT", False, stuck),
        Check("TIME_WAIT on the client", False, "x"),
    ]
    closes = Summary("grade-fork", "netns", "ab12", "now", False,
                     scenarios=[ScenarioVerdict("one", "graded", False, checks)])  # fmt: skip
    rows += score("fork", weights, closes, None, GradeFacts(), None)
    return rows


def test_every_grading_row_in_chinese_leaves_no_english_sentence() -> None:
    rows = rows_of_every_kind()
    with using("zh"):
        said = {f"{r.claim}: {r.evidence}": r.text() for r in rows}
    # The made-up runs' checks say their own names: values here, as a program's words.
    fake = sorted({RAN, "replies", "one process, a thread per connection", "UTF-8 on the wire"})
    left = {
        k: english_words(v, NAMES)
        for k, v in said.items()
        if v not in fake and not any(v == c for c in fake)
    }
    left = {k: [w for w in ws if not any(w in c.split() for c in fake)] for k, ws in left.items()}
    assert {k: w for k, w in left.items() if w} == {}
    texts = " ".join(said.values())
    with using("zh"):
        assert check_title("hostile: churn") == "恶意客户端：churn"
        listens = "service graded (submission) on server is running but did not listen on tcp "
        listens += "port 9999 within 20 s; it listens on tcp port 10000 instead"
        row = Row("builds and listens", False, listens, 0, 10)
        assert row.text().endswith("它实际监听的是 tcp 端口 10000"), row.text()
    assert check_title("hostile: churn") == "hostile: churn"
    for term in ("僵尸子进程", "在 500 个客户端 期间崩溃", "宽限期后被 SIGKILL 杀死", "进程数上限"):
        assert term in texts, term
    # grade.json's evidence stays the English it was.
    evidence = " ".join(r.evidence for r in rows)
    for english in (
        "3 zombie children (were 0)",
        "9 open descriptors (were 4)",
        "resident memory 67560 KiB (was 1000 KiB)",
        "1497 live children with no client connected; stopped by the process limit (1500)",
        "not judged: the server had crashed (status -11) during 500 clients",
        "not judged: every connection was answered; the words: see UTF-8 on the wire",
        "the server ignored SIGTERM: killed with SIGKILL after the grace period",
        "not reached: service graded (submission) on server exited before listening: boom",
    ):
        assert english in evidence, english


def test_a_class_table_and_a_grade_read_back_from_json_in_chinese() -> None:
    rows = tuple(Row(r.claim, r.passed, r.evidence, r.points, r.max_points, r.judged)
                 for r in rows_of_every_kind()[:3])  # fmt: skip
    verdict = f"{rows[0].claim}: {rows[0].evidence}"
    grade = Grade("alice", "fork", "netns", rows, 12.5, "/r/alice", verdict)
    late = Grade("bob", "fork", "", (), 600, "/r/bob", "over the time limit of 600 s")
    english = class_table([grade, late])
    assert (
        english.splitlines()[1] == "bob    FAIL       0/0   600.0 s  over the time limit of 600 s"
    )
    with using("zh"):
        table = class_table([grade, late])
        line = verdict_text(grade)
        single = grade_table(grade)
        title = check_title(rows[0].claim)
    assert line.startswith(title + "：") and "进入监听之前就退出了" in line
    assert "超过时限 600 秒" in table and "失败" in table
    assert english_words(table + single, ("alice", "fork", "netns", *NAMES)) == []


def _refusal(*args: str, env: dict[str, str] | None = None) -> str:
    proc = lab("grade", *args, env=env)
    assert proc.returncode == 2, proc.stderr
    return proc.stderr


@pytest.mark.parametrize(
    ("args", "chinese", "english"),
    [
        (["--port", "0"], "--port 0：必须在 1-65535 之间", "--port 0: must be 1-65535"),
        (["--jobs", "0"], "--jobs 0：至少为 1", "--jobs 0: must be at least 1"),
        (["--time-limit", "0"], "--time-limit 0：必须大于 0", "--time-limit 0: must be > 0"),
        (
            ["--backend", "netns", "--known-hosts", "k"],
            "--known-hosts 只用于 --backend ssh，不用于 netns",
            "--known-hosts applies to --backend ssh, not netns",
        ),
        (
            ["--backend", "ssh"],
            "--backend ssh 需要 --hosts FILE",
            "--backend ssh needs --hosts FILE",
        ),
        (
            ["--port", "x"],
            "参数 --port：无效的 int 值：'x'",
            "argument --port: invalid int value: 'x'",
        ),
        (
            ["--as", "forks"],
            "参数 --as：无效的选项：'forks'",
            "argument --as: invalid choice: 'forks'",
        ),
    ],
)
def test_grades_flag_errors_in_chinese_and_in_english_as_before(
    args: list[str], chinese: str, english: str, tmp_path: Path
) -> None:
    model = [] if "--as" in args else ["--as", "fork"]
    given = [str(GRADE / "junk.py"), *model, *args, "--out", str(tmp_path / "o")]
    said = _refusal(*given, "--lang", "zh")
    assert chinese in said, said
    assert (
        english_words(said.splitlines()[-1], ("junk", "forks", "netns", "fork", "server", "grade"))
        == []
    ), said
    assert _refusal(*given, env=ZH) == said  # the locale, as --lang
    assert english in _refusal(*given, "--lang", "en", env=ZH)
    assert english in _refusal(*given)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("text", "chinese", "english"),
    [
        ("{", "w.json:1:2：不是 JSON：", "w.json:1:2: not JSON: "),
        ("[]", "权重必须是一个对象", 'weights must be an object {"default": N, "claims": {...}}'),
        (
            '{"default": -1}',
            "default：分值必须是 >= 0 的数",
            "default: points must be a number >= 0",
        ),
    ],
)
def test_a_bad_weights_file_in_chinese(
    text: str, chinese: str, english: str, tmp_path: Path
) -> None:
    weights = tmp_path / "w.json"
    weights.write_text(text)
    given = [str(GRADE / "junk.py"), "--as", "fork", "--weights", str(weights)]
    assert chinese in _refusal(*given, "--lang", "zh")
    assert english in _refusal(*given)


def test_a_hosts_file_without_the_graders_nodes_in_chinese(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text(
        "name: h\nnetworks:\n  lan: {subnet: 10.77.1.0/24}\n"
        "nodes:\n  server: {interfaces: {lan: 10.77.1.10}}\n"
    )
    given = [str(GRADE / "junk.py"), "--as", "fork", "--hosts", str(hosts)]
    said = _refusal(*given, "--lang", "zh")
    assert (
        "没有节点 'c1'：通过 ssh 评分需要节点" in said and "nodes.server：没有 `ssh:` 目标" in said
    )
    assert "个问题" in said.splitlines()[-1]
    english = _refusal(*given)
    assert "nodes: no node 'c1': grading over ssh needs nodes server, c1, c2 and c3" in english
    assert "nodes.server: no `ssh:` target: grading over ssh needs" in english


def test_the_hostile_clients_findings_in_chinese() -> None:
    unanswered = "afterwards, a normal client was not answered: ConnectionRefusedError: refused"
    wrong = "a line of exactly MAX_LINE bytes: wrong reply (0 bytes, b''...)"
    findings = [unanswered, wrong, "only 412 of 1000 connections established"]
    base = Health(alive=True, fds=4, rss_kib=1000)
    facts = GradeFacts(base, [CaseResult("idle_1000", findings, {}, Health(True, 0, 0, 4, 1000))])
    row = next(r for r in score("thread", read_weights(), None, None, facts, None)
               if r.claim == "hostile: idle_1000")  # fmt: skip
    assert row.evidence == "; ".join(findings)  # grade.json: as the hostile client said it
    with using("zh"):
        said = row.text()
    assert said.startswith("之后，一个普通客户端没有得到应答：ConnectionRefusedError"), said
    assert "恰好 MAX_LINE 字节的一行：应答错误（0 字节，b''……）" in said, said
    assert said.endswith("1000 个连接中只建立了 412 个"), said
