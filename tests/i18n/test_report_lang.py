"""The report and the terminal summary in Chinese, on runs replayed from recordings of real
netns runs (no root): the course's words on the page, summary.json the same in both
languages, and `lab report --lang zh DIR` rewriting only the page and the summary."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.cli import main
from lab.errors import TopologyError
from lab.i18n import set_lang, using
from lab.report.markup import check_title
from lab.report.summary import REPORT_FILE, finish_run, format_summary
from lab.run.backends.fake import fake_backend
from lab.run.backends.tape import TOPOLOGY_FILE
from lab.run.runner import run_lab
from lab.spec.model import Topology
from lab.spec.topology import load_topology

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"


@pytest.fixture(autouse=True)
def _state_and_lang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The run registry in the test's own folder; the process's language put back."""
    monkeypatch.setenv("SOCKET_LAB_STATE", str(tmp_path / "state"))
    yield
    set_lang("en")


def replayed(name: str, out: Path) -> Topology:
    topology = load_topology(RECORDINGS / name / TOPOLOGY_FILE)
    run_lab(topology, fake_backend(RECORDINGS / name), out)
    return topology


def text_of(page: str) -> str:
    page = re.sub(r"<(style|script)>.*?</\1>", "", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", page)


def test_the_page_and_the_summary_in_chinese(tmp_path: Path) -> None:
    out = tmp_path / "out"
    topology = replayed("close", out)
    english = finish_run(out, topology, lang="en")
    en_json = (out / "summary.json").read_text()
    chinese = finish_run(out, topology, lang="zh")
    assert (out / "summary.json").read_text() == en_json  # language-neutral
    assert [c.name for s in chinese.scenarios for c in s.checks] == [
        c.name for s in english.scenarios for c in s.checks
    ]
    page = (out / REPORT_FILE).read_text(encoding="utf-8")
    assert "<html lang=zh>" in page
    words = text_of(page)
    for term in ("四次挥手", "半关闭", "客户端进入 TIME_WAIT", "谁先关闭", "拓扑", "主机"):
        assert term in words, term
    assert "Hosts" not in words and "TCP connections (" not in words
    terminal = format_summary(chinese, lang="zh")
    assert "四次挥手" in terminal and "半关闭" in terminal
    assert terminal.splitlines()[-1].startswith("通过：")
    assert "four-way close" in format_summary(chinese, lang="en")
    # Evidence sentences too, while summary.json keeps them in English.
    assert "客户端先发出 FIN（主动关闭）" in terminal and "个僵尸子进程" in words
    assert "the client's FIN came first" in en_json and "主动关闭" not in en_json


def test_chinese_in_a_description_and_in_scenario_lines_is_shown_as_written(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    topology = replayed("default", out)
    own = dataclasses.replace(topology, description="自己写的实验：<字典> & 回射")
    finish_run(out, own, lang="en")
    page = (out / REPORT_FILE).read_text(encoding="utf-8")
    assert "自己写的实验：&lt;字典&gt; &amp; 回射" in page
    assert "你好" in text_of(page)  # the dictionary scenario's expected replies


def test_a_users_own_description_is_not_replaced_by_the_shipped_ones_translation(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    topology = replayed("handshake", out)
    edited = dataclasses.replace(topology, description="My own handshake lab.")
    finish_run(out, edited, lang="zh")
    words = text_of((out / REPORT_FILE).read_text(encoding="utf-8"))
    assert "My own handshake lab." in words and "一个客户端连接多进程服务器" not in words
    finish_run(out, topology, lang="zh")
    assert "一个客户端连接多进程服务器" in text_of((out / REPORT_FILE).read_text(encoding="utf-8"))


def test_lab_report_lang_rewrites_the_page_and_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    topology = replayed("handshake", out)
    finish_run(out, topology, lang="en")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["report", "--lang", "zh", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "三次握手" in printed and printed.splitlines()[-1] == "通过：1/1 个场景通过"
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    changed = sorted(p.name for p in after if after[p] != before.get(p))
    assert changed == [REPORT_FILE]  # summary.json is rewritten byte for byte the same
    assert set(after) == set(before)
    assert "三次握手" in text_of((out / REPORT_FILE).read_text(encoding="utf-8"))


def test_the_locale_chooses_when_no_lang_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    finish_run(out, replayed("handshake", out), lang="en")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert main(["report", str(out)]) == 0
    assert "三次握手" in capsys.readouterr().out
    assert main(["report", "--lang", "en", str(out), "--json"]) == 0
    checks = json.loads(capsys.readouterr().out)["scenarios"][0]["checks"]
    assert "handshake" in [c["name"] for c in checks]


def test_a_check_name_is_translated_with_its_bug_suffix() -> None:
    with using("zh"):
        assert check_title("children reaped (bug, a race)") == "回收子进程（缺陷，竞态）"
        assert check_title("replies (bug)") == "应答（缺陷）"
        assert check_title("a check of tomorrow") == "a check of tomorrow"
    assert check_title("replies (bug)") == "replies (bug)"


def test_a_topology_file_may_hold_chinese_in_its_description_and_scenario_lines(
    tmp_path: Path,
) -> None:
    source = (RECORDINGS / "handshake" / TOPOLOGY_FILE).read_text()
    text = source.replace("send: [hello]", "send: [你好, 世界]").replace(
        "expect: [HELLO]", "expect: [你好, 世界]"
    )
    text = re.sub(r"description: >-\n(  .*\n)+", "description: 三次握手，中文说明\n", text)
    path = tmp_path / "zh.yaml"
    path.write_text(text, encoding="utf-8")
    topology = load_topology(path)
    assert topology.description == "三次握手，中文说明"
    assert list(topology.scenarios[0].send) == ["你好", "世界"]
    assert list(topology.scenarios[0].expect) == ["你好", "世界"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("name: exp-handshake", "name: 握手"), encoding="utf-8")
    with pytest.raises(TopologyError, match="bad name '握手'"):
        load_topology(bad)


def test_every_check_of_the_recorded_runs_has_a_chinese_name(tmp_path: Path) -> None:
    names = set()
    for name in ("handshake", "close", "fork", "udp", "default"):
        out = tmp_path / name
        summary = finish_run(out, replayed(name, out), lang="zh")
        names |= {c.name for sc in summary.scenarios for c in sc.checks}
    with using("zh"):
        untranslated = sorted(n for n in names if check_title(n) == n)
    assert len(names) > 15 and untranslated == []
