"""`lab grade`'s table and pages in Chinese; grade.json and JUnit keep the English ids."""

from __future__ import annotations

from lab.grade.output import grade_html, grade_table, junit_xml
from lab.grade.score import Grade, Row
from lab.i18n import columns, english, msg, using


def a_grade() -> Grade:
    rows = (
        Row("builds and listens", True, "listening on 9999", 10, 10),
        Row("children reaped", False, "2 zombie children of pid 40", 0, 10),
        Row("TIME_WAIT on the client", False, "not judged: the server crashed", 0, 5, False),
    )
    return Grade("alice", "fork", "netns", rows, 3.5, "/r/alice", "children reaped")


def test_the_table_in_chinese_lines_up() -> None:
    with using("zh"):
        table = grade_table(a_grade())
    lines = table.splitlines()
    assert lines[0] == "alice，作为 fork 服务器，后端 netns"
    assert "回收子进程" in table and "客户端进入 TIME_WAIT" in table and "未评判" in table
    assert lines[-2].startswith("失败  10/25 分") and lines[-1] == "结果：/r/alice"
    # The evidence column starts at the same terminal column on every row.
    rows = lines[2:6]
    starts = [
        columns(r[: r.index(word)])
        for r, word in zip(rows, ["证据", "listening", "2 zombie", "not judged"], strict=True)
    ]
    assert len(set(starts)) == 1, rows


def test_the_page_in_chinese_and_the_junit_in_english_ids() -> None:
    grade = a_grade()
    with using("zh"):
        page = grade_html(grade, has_report=True)
        junit = junit_xml([grade])
    assert '<html lang="zh">' in page and "回收子进程" in page and "本次运行的证据" in page
    assert 'name="children reaped"' in junit
    assert grade_table(grade).splitlines()[0] == "alice as a fork server on netns"


def test_the_evidence_column_speaks_the_checks_language_and_grade_json_english() -> None:
    said = msg("detail.zombies_after", count=2, pid=40, how="")
    row = Row("children reaped", False, english(said), 0, 10, said=said)
    grade = Grade("bob", "fork", "netns", (row, Row("x", False, "no evidence", 0, 1)), 1, "", "")
    with using("zh"):
        table = grade_table(grade)
        page = grade_html(grade, has_report=False)
        junit = junit_xml([grade])
    assert "客户端离开后，pid 40 有 2 个僵尸子进程" in table and "没有证据" in table
    assert "客户端离开后" in page
    assert "2 zombie children of pid 40 after the clients left" in junit
    rows = grade.to_json()["rows"]
    assert isinstance(rows, tuple) and rows[0]["evidence"] == english(said)
    assert "said" not in rows[0]
