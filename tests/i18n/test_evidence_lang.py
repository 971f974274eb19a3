"""The evidence sentences of every check of the recorded runs in Chinese: once the
verdict has put them in the report's language, no English sentence is left, only the
values they quote (addresses, ports, node and program names, payloads, paths) and the
protocol's own words, which the course keeps as they are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.i18n import set_lang, using
from lab.report.summary import REPORT_FILE, finish_run
from lab.run.backends.fake import fake_backend
from lab.run.backends.tape import TOPOLOGY_FILE
from lab.run.runner import run_lab
from lab.spec.model import Topology
from lab.spec.topology import load_topology

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"

# Words a Chinese sentence of the lab may hold: the protocol's and the system's names
# (TIME_WAIT, SACK, EADDRINUSE ...), the snapshots' phases as the run names them, and
# the ones a program prints (its name, ``pid``).
ALLOWED = frozenset(
    {
        "TIME_WAIT", "CLOSE_WAIT", "LISTEN", "ESTABLISHED", "SYN-ACK", "ACKs",
        "sackOK", "wscale", "after", "during", "before", "watch", "expect",
        "SIGCHLD", "SIGTERM", "SA_RESTART", "SHUT_WR", "reuseaddr", "backlog",
        "read", "pid", "python", "netem", "delay",
    }
)  # fmt: skip
# What a sentence quotes: payloads and log lines in quotes, paths and commands in a
# node's own words.
_QUOTED = re.compile(r"b?'[^']*'|b?\"[^\"]*\"|`[^`]*`|\S*/\S*")
_WORD = re.compile(r"[A-Za-z_][A-Za-z_-]{3,}")


def english_words(text: str, topology: Topology) -> list[str]:
    """The ASCII words of 4+ letters in ``text`` that are neither quoted nor a name of
    the topology's nor one of :data:`ALLOWED`."""
    names = {n.name for n in topology.nodes} | {s.name for s in topology.services}
    names |= {s.name for s in topology.scenarios} | {s.program for s in topology.services}
    words = _WORD.findall(_QUOTED.sub(" ", text))
    return [w for w in words if w not in ALLOWED and w not in names and not w.isupper()]


def replayed(name: str, out: Path) -> Topology:
    topology = load_topology(RECORDINGS / name / TOPOLOGY_FILE)
    run_lab(topology, fake_backend(RECORDINGS / name), out)
    return topology


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCKET_LAB_STATE", str(tmp_path / "state"))


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
