"""What the Chinese report still said in English: the snapshot phases of the sockets'
states table and the process trees, a connection's handshake fact, the topology picture's
label; and `lab report`'s one-line refusal of an evidence file no reader opens. Replayed
from recordings (no root); the English as it was."""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.cli import main
from lab.i18n import set_lang
from lab.report.summary import REPORT_FILE, finish_run
from lab.run.backends.fake import fake_backend
from lab.run.backends.tape import TOPOLOGY_FILE
from lab.run.runner import run_lab
from lab.spec.model import Topology
from lab.spec.topology import load_topology
from tests.i18n.words import english_words

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SOCKET_LAB_STATE", str(tmp_path / "state"))
    yield
    set_lang("en")


def page_of(name: str, out: Path, lang: str) -> tuple[str, Topology]:
    topology = load_topology(RECORDINGS / name / TOPOLOGY_FILE)
    run_lab(topology, fake_backend(RECORDINGS / name), out)
    finish_run(out, topology, lang=lang)
    return (out / REPORT_FILE).read_text(encoding="utf-8"), topology


def texts(page: str, pattern: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", " ", m)) for m in re.findall(pattern, page, re.S)]


@pytest.mark.parametrize("name", ["default", "close", "fork"])
def test_the_phases_and_the_handshake_fact_in_chinese(tmp_path: Path, name: str) -> None:
    page, topology = page_of(name, tmp_path / "zh", "zh")
    names = {n.name for n in topology.nodes} | {s.name for s in topology.scenarios}
    names |= {s.name for s in topology.services} | {s.program for s in topology.services}
    names |= {"client", "sack_perm", "True", "mss", "wscale"}
    states = texts(page, r"<table class=states>.*?</table>")
    facts = texts(page, r"<ul class=facts>.*?</ul>")
    trees = texts(page, r"<div class=ptree><h4>.*?</h4>")
    assert states and (facts or name == "fork")
    left = [(s, english_words(s, names)) for s in states + facts + trees]
    assert [x for x in left if x[1]] == []
    assert '<th title="during">场景中</th>' in page
    assert 'aria-label="拓扑图"' in page
    if name != "fork":
        assert "三次握手：SYN、SYN-ACK、ACK 三次握手；每个确认号 = 对方 ISN + 1" in page
    english, _ = page_of(name, tmp_path / "en", "en")
    assert "<tr><th>during</th>" in english and 'aria-label="topology"' in english
    if name != "fork":
        assert "SYN, SYN-ACK, ACK; each ack = peer&#x27;s ISN + 1" in english


def test_lab_reports_refusal_of_unreadable_evidence_in_chinese(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    page_of("handshake", out, "en")
    pcap = next(out.glob("*/*.pcap"))
    pcap.unlink()
    pcap.symlink_to("/dev/zero")
    fifo = next(out.glob("*/snapshots/during.ps.txt"))
    fifo.unlink()
    os.mkfifo(fifo)
    before = sorted(p.name for p in out.rglob("*"))
    assert main(["report", "--lang", "zh", str(out)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        f"lab: {pcap}：一个符号链接（指向 /dev/zero）；证据文件必须是普通文件"
    ), line
    rel = fifo.relative_to(out)
    assert f"另有 1 个文件同样被拒绝：{rel}（一个 FIFO，不是普通文件）" in line, line
    assert line.endswith(f"{out} 中没有作出任何判断，也没有写入任何文件"), line
    assert main(["report", str(out)]) == 2
    (english,) = capsys.readouterr().err.splitlines()
    assert english == (
        f"lab: {pcap}: a symbolic link (to /dev/zero); evidence files must be regular files; "
        f"1 more file refused likewise: {rel} (a FIFO, not a regular file); "
        f"nothing in {out} was judged or written"
    )
    assert sorted(p.name for p in out.rglob("*")) == before
    shutil.rmtree(out)
