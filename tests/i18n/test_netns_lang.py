"""`lab experiment handshake --lang zh` on real network namespaces: a Chinese report and
terminal summary, the same summary.json as in English."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.labcli import lab


@pytest.mark.netns
def test_the_handshake_experiment_in_chinese(root: None, tmp_path: Path) -> None:
    out = tmp_path / "zh"
    res = lab(
        "experiment", "handshake", "--lang", "zh", "--backend", "netns", "--out", str(out),
        env={"LANG": "C.UTF-8"},
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "三次握手" in res.stdout and "回收子进程" in res.stdout
    assert res.stdout.splitlines()[-1] == "通过：1/1 个场景通过"
    assert "正在启动 2 个节点（netns）" in res.stderr and "快照：during" in res.stderr
    page = (out / "report.html").read_text(encoding="utf-8")
    for term in ("<html lang=zh>", "三次握手", "一个客户端连接多进程服务器", "初始序号", "拓扑"):
        assert term in page, term
    summary = json.loads((out / "summary.json").read_text())
    names = [c["name"] for c in summary["scenarios"][0]["checks"]]
    assert "handshake" in names and "children reaped" in names
    details = "".join(c["detail"] for c in summary["scenarios"][0]["checks"])
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in details)  # no CJK in summary.json
