"""The live lab's refusals and replies in Chinese (no lab needs to be up for them): the
usage errors of lab up, exec, shell, capture, snapshot, scenario and netem, no live lab
to talk to, and a supervisor's English replies read back; the English as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.errors import read_back
from lab.i18n import set_lang, using
from tests.i18n.words import english_words
from tests.labcli import lab

DEFAULT = "lab/data/topologies/default.yaml"
# The commands' and the lab's own names the sentences quote.
NAMES = ("lab", "exec", "shell", "capture", "snapshot", "scenario", "netem", "tshark", "default",
         "hand", "client", "echo", "lan", "ingress", "delay", "final", "words")  # fmt: skip


@pytest.fixture(autouse=True)
def _lang() -> Iterator[None]:
    yield
    set_lang("en")


@pytest.mark.parametrize(
    ("args", "chinese", "english"),
    [
        (["exec", "server", "--", "true"], "没有常驻的实验室：用 `lab up FILE` 启动一个",
         "no live lab: start one with `lab up FILE`"),
        (["exec", "server"], "lab exec：没有给出命令", "lab exec: no command given"),
        (["shell", "a", "b", "c"], "用法：lab shell [LAB] NODE", "usage: lab shell [LAB] NODE"),
        (["capture", "a", "b", "c", "d"], "用法：lab capture [LAB] NODE [IFACE] [-w FILE]",
         "usage: lab capture [LAB] NODE [IFACE] [-w FILE]"),
        (["snapshot", "a", "b", "c"], "用法：lab snapshot", "usage: lab snapshot [LAB] [NAME]"),
        (["snapshot", "before"], "快照名 'before'：请用 1-32 个小写字母",
         "snapshot name 'before': use 1-32 lower-case letters, digits and '-', not one of"),
        (["scenario"], "参数", "arguments are required: words"),
        (["netem", "server", "eth0"], "lab netem：没有要改的：请给出损伤",
         "lab netem: nothing to change: give impairments (--delay, --loss...) or --clear"),
        (["netem", "server", "eth0", "--clear", "--loss", "5%"], "lab netem：--clear 不接受取值",
         "lab netem: --clear takes no values"),
        (["up", DEFAULT, "--name", "Bad_Name"], "--name 'Bad_Name'：应为 1-32 个小写字母",
         "--name 'Bad_Name': 1-32 lower-case letters, digits and '-'"),
        (["up", DEFAULT, "--backend", "netns", "--known-hosts", "k"],
         "--accept-new-host-keys 和 --known-hosts 只用于 --backend ssh",
         "--accept-new-host-keys and --known-hosts apply to --backend ssh"),
        (["down", "nowhere"], "没有常驻实验室 'nowhere'（`lab ls` 可以列出它们）",
         "no live lab 'nowhere' (`lab ls` lists them)"),
    ],
)  # fmt: skip
def test_the_live_labs_refusals_in_chinese_and_in_english_as_before(
    args: list[str], chinese: str, english: str, tmp_path: Path
) -> None:
    env = {"SOCKET_LAB_STATE": str(tmp_path / "state")}
    zh = lab(args[0], "--lang", "zh", *args[1:], env=env)
    assert zh.returncode == 2, zh.stderr
    assert chinese in zh.stderr, zh.stderr
    assert english_words(zh.stderr.splitlines()[-1], NAMES) == [], zh.stderr
    locale = lab(*args, env={**env, "LANG": "zh_CN.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""})
    assert locale.stderr == zh.stderr
    en = lab(*args, env=env)
    assert en.returncode == 2 and english in en.stderr, en.stderr
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").rglob("*.json"))


@pytest.mark.parametrize(
    ("reply", "chinese"),
    [
        ("snapshot hand-1: /r/lab/<node>/snapshots/hand-1.*.txt",
         "快照 hand-1：/r/lab/<node>/snapshots/hand-1.*.txt"),
        ("scenario 'echo' was run already in this lab", "场景 'echo' 在这个实验室里已经运行过"),
        ("scenario echo: 2 client node(s) done", "场景 echo：2 个客户端节点已完成"),
        ("scenario echo: clients ran; failed on client1",
         "场景 echo：客户端已运行；在 client1 上失败"),
        ("netem client1's lan ingress: delay 100ms", "netem client1 的 lan ingress：delay 100ms"),
        ("netem client1's lan ingress: cleared", "netem client1 的 lan ingress：已清除"),
        ("lab default (ab12cd): the supervisor ended without a reply",
         "实验室 default（ab12cd）：监管进程没有回复就结束了"),
    ],
)  # fmt: skip
def test_a_supervisors_english_reply_is_read_back(reply: str, chinese: str) -> None:
    with using("zh"):
        assert read_back(reply) == chinese
        assert english_words(read_back(reply), NAMES) == []
    assert read_back(reply) == reply


def test_lab_ups_table_in_chinese_and_in_english_as_before() -> None:
    from lab.cli.live import _table
    from lab.run.livestate import LiveNode, LiveState

    nodes = [LiveNode(n, {"lan": "eth0"}, {"eth0": a}) for n, a in
             (("server", "10.0.0.1"), ("client1", "10.0.0.2"))]  # fmt: skip
    service = ["echo echo_server 10.0.0.1:9000/tcp on server"]
    state = LiveState("ab12", "default", "default", "netns", "/r", "/s", 1, None, "now",
                      nodes, service, ["one"])  # fmt: skip
    english = _table(state).splitlines()
    assert english[:3] == [
        "lab default (run ab12) is up on netns; results in /r",
        "",
        "NODE       INTERFACE  ADDRESS",
    ]
    assert "echo       echo_server    10.0.0.1:9000/tcp on server" in english
    assert (
        "  lab shell default client1                  an interactive shell on the node" in english
    )
    assert "  lab scenario default NAME         one of: one" in english
    with using("zh"):
        chinese = _table(state)
    assert "实验室 default（运行 ab12）已在 netns 上启动" in chinese
    assert "10.0.0.1:9000/tcp，在 server 上" in chinese and "节点上的交互式 shell" in chinese
    assert (
        english_words(chinese, (*NAMES, "echo_server", "netstat", "server", "netns", "down")) == []
    )
