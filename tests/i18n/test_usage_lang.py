"""The other refusals a user meets before anything runs, in Chinese: a results folder
that is not empty, a bad run id, lab init into a full folder, host-key options without
ssh, netem values of `lab netem`; and lab validate's and lab init's own lines. The English
as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.i18n.words import english_words
from tests.labcli import lab

DEFAULT = "lab/data/topologies/default.yaml"
VALUES = ("default", "yaml", "topology", "time", "run-id", "xyz", "delay", "results", "loss")


@pytest.mark.parametrize(
    ("args", "chinese", "english"),
    [
        (["run", DEFAULT, "--backend", "netns", "--out", "{full}"],
         "{full}：目录不是空的（之前的证据？）；请用 --out 另选一个",
         "{full}: the folder is not empty (earlier evidence?); choose another with --out"),
        (["clean", "--run-id", "xyz"], "--run-id 'xyz'：不是运行 id",
         "--run-id 'xyz': not a run id (six hex digits, as `lab ls` shows them)"),
        (["clean", "--force"], "--force 只删除一个正在运行的实验室：请同时给出它的 --run-id",
         "--force removes one running lab: give its --run-id too"),
        (["init", "{full}"], "{full}：已存在且不是空目录",
         "{full}: exists and is not an empty folder"),
        (["run", DEFAULT, "--backend", "netns", "--known-hosts", "k"],
         "--accept-new-host-keys 和 --known-hosts 只用于 --backend ssh",
         "--accept-new-host-keys and --known-hosts apply to --backend ssh"),
        (["netem", "a", "eth0", "--loss", "5"], "--loss：'5' 不是百分比：一个数加 '%'，例如 5%",
         "--loss: '5' is not a percentage: a number and '%', e.g. 5%"),
    ],
)  # fmt: skip
def test_refusals_before_a_run_in_chinese(
    args: list[str], chinese: str, english: str, tmp_path: Path
) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "evidence").write_text("x")
    args = [a.replace("{full}", str(full)) for a in args]
    env = {"SOCKET_LAB_STATE": str(tmp_path / "state")}
    zh = lab(args[0], "--lang", "zh", *args[1:], env=env)
    assert zh.returncode == 2, zh.stderr
    assert chinese.replace("{full}", str(full)) in zh.stderr, zh.stderr
    assert english_words(zh.stderr, VALUES) == [], zh.stderr
    en = lab(*args, env=env)
    assert en.returncode == 2 and english.replace("{full}", str(full)) in en.stderr, en.stderr
    assert sorted(p.name for p in full.iterdir()) == ["evidence"]


def test_validate_and_init_say_what_they_did_in_chinese(tmp_path: Path) -> None:
    assert (
        lab("validate", "--lang", "zh", DEFAULT).stdout
        == f"{DEFAULT}：有效（3 个节点，4 个场景）\n"
    )
    assert lab("validate", DEFAULT).stdout == f"{DEFAULT}: valid (3 nodes, 4 scenarios)\n"
    made = lab("init", "--lang", "zh", str(tmp_path / "mine"))
    assert made.returncode == 0
    assert (
        made.stdout.startswith(f"{tmp_path / 'mine'}：")
        and "个文件；试试 `lab validate" in made.stdout
    )


def test_lab_clean_of_a_run_that_left_nothing_in_chinese(tmp_path: Path) -> None:
    env = {"SOCKET_LAB_STATE": str(tmp_path / "state")}
    chinese = lab("clean", "--lang", "zh", "--run-id", "0f0f0f", env=env)
    assert (chinese.returncode, chinese.stdout) == (0, "没有需要清理的\n"), chinese.stderr
    english = lab("clean", "--run-id", "0f0f0f", env=env)
    assert (english.returncode, english.stdout) == (0, "nothing to clean\n"), english.stderr
