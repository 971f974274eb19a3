"""The evidence sentences of every check of the recorded runs in Chinese: once the
verdict has put them in the report's language, no English sentence is left, only the
values they quote (addresses, ports, node and program names, payloads, paths) and the
protocol's own words, which the course keeps as they are."""

from __future__ import annotations

import html
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.cli import main
from lab.evidence.frames import TcpFrame, take_apart
from lab.i18n import english, msg, reread, set_lang, using
from lab.report.anatomy_html import field_table, hex_view
from lab.report.summary import REPORT_FILE, finish_run
from lab.run.backends.fake import fake_backend
from lab.run.backends.tape import TOPOLOGY_FILE
from lab.run.runner import run_lab
from lab.spec.model import Topology
from lab.spec.topology import load_topology
from tests.i18n import words

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"


def english_words(text: str, topology: Topology) -> list[str]:
    """The words of ``text`` left in English that are not a name of the topology's."""
    names = {n.name for n in topology.nodes} | {s.name for s in topology.services}
    names |= {s.name for s in topology.scenarios} | {s.program for s in topology.services}
    return words.english_words(text, names)


def replayed(name: str, out: Path) -> Topology:
    topology = load_topology(RECORDINGS / name / TOPOLOGY_FILE)
    run_lab(topology, fake_backend(RECORDINGS / name), out)
    return topology


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The run registry in the test's own folder; the process's language put back."""
    monkeypatch.setenv("SOCKET_LAB_STATE", str(tmp_path / "state"))
    yield
    set_lang("en")


@pytest.mark.parametrize("name", ["handshake", "close", "fork", "udp", "default"])
def test_no_english_sentence_is_left_in_the_chinese_evidence(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    topology = replayed(name, out)
    summary = finish_run(out, topology, lang="zh")
    set_lang("en")
    checks = [c for sc in summary.scenarios for c in sc.checks]
    with using("zh"):
        said = {c.name: c.text() for c in checks}
    left = {n: english_words(text, topology) for n, text in said.items()}
    assert {n: words for n, words in left.items() if words} == {}
    assert len(said) >= 2
    page = (out / REPORT_FILE).read_text(encoding="utf-8")
    assert any(text in page for text in said.values() if "<" not in text and "&" not in text)


def test_english_words_finds_a_sentence_and_passes_names_and_quotes() -> None:
    topology = load_topology(RECORDINGS / "handshake" / TOPOLOGY_FILE)
    node = topology.nodes[0].name
    said = f"{node} 上有 3 个 TIME_WAIT；日志 'bind failed' 在 snapshots/after.ss.txt"
    assert english_words(said, topology) == []
    said = "3/3 connections fail; ok"
    assert english_words(said, topology) == ["connections", "fail"]


def _frame() -> TcpFrame:
    """An Ethernet/IPv4/TCP frame carrying ``hello\\n``, as a capture would hold it."""
    payload = b"hello\n"
    tcp = struct.pack("!HHIIBBHHH", 40000, 9000, 1, 1, 5 << 4, 0x18, 64240, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 1, 0x4000, 64, 6, 0,
                     bytes([10, 0, 0, 2]), bytes([10, 0, 0, 1]))  # fmt: skip
    eth = bytes.fromhex("02000000000102000000000208 00".replace(" ", ""))
    frame = take_apart("server/eth0.pcap", 4, eth + ip + tcp + payload)
    assert frame is not None
    return frame


def test_the_frame_drawings_speak_chinese_and_english_as_before() -> None:
    frame = _frame()
    with using("zh"):
        drawn = hex_view(frame) + field_table(frame)
    words = re.sub(r"<[^>]+>|\b(class|title)=\"[^\"]*\"", " ", drawn)
    titles = " ".join(re.findall(r'title="([^"]*)"', drawn))
    left = english_words(html.unescape(words + " " + titles), _topology())
    assert left == [], left
    assert "目的端口" in drawn and "传输层" in drawn and "载荷" in drawn
    english = hex_view(frame) + field_table(frame)
    assert "<th>OSI layer</th>" in english and "destination port" in english
    assert "OSI 4 transport, TCP/IP transport" in english


def _topology() -> Topology:
    return load_topology(RECORDINGS / "handshake" / TOPOLOGY_FILE)


def test_the_clis_refusals_in_chinese_keep_their_paths_and_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--lang", "zh", str(tmp_path)]) == 1
    said = capsys.readouterr().err
    assert said == f"lab: {tmp_path}：不是 `lab run` 的结果目录（没有 run.json/topology.yaml）\n"
    broken = Path(__file__).resolve().parents[1] / "cli" / "broken.yaml"
    out = tmp_path / "o"
    assert main(["run", str(broken), "--lang", "zh", "--backend", "netns", "--out", str(out)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("lab: ") and lines[-1].endswith("个问题；没有创建任何东西")
    assert any(line.startswith(f"{broken}:") or "broken.yaml:" in line for line in lines)
    assert not out.exists()
    set_lang("en")
    assert main(["report", str(tmp_path)]) == 1
    assert "not a results folder of `lab run`" in capsys.readouterr().err


def test_a_recorded_english_error_is_reread_in_chinese_or_left_as_it_is() -> None:
    said = msg("error.never_listened", service="echo", program="echo_server", node="server",
               protocol="tcp", port=9000, timeout=5.0)  # fmt: skip
    recorded = english(said)  # what run.json keeps
    with using("zh"):
        assert reread(recorded, "error.") == said.text()
        assert "5 秒内没有在 tcp 端口 9000 上监听" in reread(recorded, "error.")
        assert reread("the host is on fire", "error.") == "the host is on fire"
    assert reread(recorded, "error.") == recorded
