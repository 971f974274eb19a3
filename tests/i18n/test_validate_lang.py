"""`lab validate`'s located problems in Chinese, with --lang and from the locale: every
problem of every bad file of the topology tests put in words again after its location,
which stays as it is; no English sentence left, only the file's own words (keys, names,
values), the schema's keys and what YAML itself quotes. The English as it was."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.cli import main
from lab.errors import LOCATED
from lab.i18n import catalogue, reread, set_lang, using
from lab.spec import keys, keys_netem
from lab.spec.claims import CLAIM_SPECS
from lab.spec.keys import BUILTIN_CHECKS
from lab.spec.keytypes import Section
from lab.spec.model import SERVER_PROGRAMS
from tests.i18n.words import english_words
from tests.labcli import lab

BAD = Path(__file__).resolve().parents[1] / "topology" / "bad"
BROKEN = Path(__file__).resolve().parents[1] / "cli" / "broken.yaml"
# Files the fuzzers found or start from: bytes no person would write.
ODD = [
    Path(__file__).resolve().parents[1] / p
    for p in ("topology/fuzz_crashes", "fuzz/seeds/topology")
]
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def schema_words() -> set[str]:
    """The keys of every section and their choices, the lab's programs and YAML's own
    values."""
    sections = [v for m in (keys, keys_netem) for v in vars(m).values() if isinstance(v, Section)]
    choices = {c for s in sections for k in s.keys for c in k.choices or ()}
    return {k.name for s in sections for k in s.keys} | choices | set(SERVER_PROGRAMS) | {
        "true", "false", "null", "concurrency", "refused", "flow", "mapping",
    }  # fmt: skip


@pytest.fixture(autouse=True)
def _lang() -> Iterator[None]:
    yield
    set_lang("en")


def validate(
    path: Path, capsys: pytest.CaptureFixture[str], *lang: str, code: int = 2
) -> list[str]:
    assert main(["validate", str(path), *lang]) == code
    return capsys.readouterr().err.splitlines()


def test_every_bad_files_problems_in_chinese(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(BAD.glob("*.yaml")) + sorted(p for d in ODD for p in d.iterdir())
    assert len(files) > 90
    left: dict[str, list[str]] = {}
    for path in files:
        code = main(["validate", str(path), "--lang", "en"])
        english = capsys.readouterr().err.splitlines()
        if code == 0:
            continue
        chinese = validate(path, capsys, "--lang", "zh")
        assert len(chinese) == len(english), path
        own = schema_words() | set(_WORD.findall(path.read_text(errors="replace")))
        for en, zh in zip(english[:-1], chinese[:-1], strict=True):
            where = LOCATED.fullmatch(en)
            assert where is not None and zh.startswith(where.group(1)), (en, zh)
            said = zh[where.end(1) :]
            assert said != where.group(2), en  # put in words again
            words = english_words(said, own)
            if words:
                left[en] = words
        assert chinese[-1].endswith("没有创建任何东西"), chinese[-1]
    assert left == {}


def test_validate_follows_the_locale_and_keeps_the_english(tmp_path: Path) -> None:
    zh = {"LANG": "zh_CN.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""}
    chinese = lab("validate", str(BROKEN), env=zh)
    assert chinese.returncode == 2
    assert lab("validate", str(BROKEN), "--lang", "zh").stderr == chinese.stderr
    assert f"{BROKEN}:8: nodes.brokenb.interfaces.wan: 未知的网络 'wan'（是不是 'lan'？）" in (
        chinese.stderr
    )
    assert "70000 超出范围 1..65535" in chinese.stderr
    assert chinese.stderr.splitlines()[-1] == "lab: 4 个问题；没有创建任何东西"
    english = lab("validate", str(BROKEN), "--lang", "en", env=zh)
    assert english.stderr.splitlines() == [
        f"{BROKEN}:6: nodes.brokena.interfaces.lan: 10.77.10.5 is not in network 'lan' "
        "(10.77.9.0/24)",
        f"{BROKEN}:8: nodes.brokenb.interfaces.wan: unknown network 'wan' (did you mean "
        "'lan'?); networks: lan",
        f"{BROKEN}:10: services.s.port: 70000 is out of range 1..65535",
        f"{BROKEN}:10: services.s.node: unknown node 'nowhere'",
        "lab: 4 problems; nothing was created",
    ]
    assert lab("validate", str(BROKEN)).stderr == english.stderr


def test_a_file_that_cannot_be_read_and_yamls_own_words_in_chinese(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    said = validate(tmp_path / "none.yaml", capsys, "--lang", "zh")
    assert (
        said[0]
        == f"{tmp_path / 'none.yaml'}:1: (document): 无法读取文件：No such file or directory"
    )
    said = validate(tmp_path, capsys, "--lang", "zh")
    assert said[0].endswith("(document): 不是普通文件（一个目录）")
    syntax = validate(BAD / "syntax-error.yaml", capsys, "--lang", "zh")
    assert syntax[0].endswith(
        "YAML 语法错误：应为 ',' 或 '}'，却得到 ':'（在解析流式映射时，始于第 3 行）"
    )


# Every problem the topology tests saw (their messages, without the location), once:
# sections the bad files above do not reach (programs, netem, ssh, impair steps).
PROBLEMS = Path(__file__).with_name("fixtures") / "problems.txt"


def test_every_problem_the_topology_tests_meet_is_put_in_chinese() -> None:
    seen = [line.replace("\\n", "\n") for line in PROBLEMS.read_text("utf-8").splitlines()]
    assert len(seen) > 500
    english = catalogue("en")
    vocabulary = {
        w.lower()
        for k, v in english.items()
        if k.startswith("spec.")
        for literal, *_ in string.Formatter().parse(v)
        for w in _WORD.findall(literal)
    } - {w.lower() for w in schema_words() | set(CLAIM_SPECS) | set(BUILTIN_CHECKS)}
    vocabulary.discard("twice")  # a program of the tests is named so
    left = {}
    with using("zh"):
        for text in seen:
            said = reread(text, "spec.")
            words = [w for w in english_words(said) if w.lower() in vocabulary]
            if said == text or words:
                left[text] = words
    assert left == {}
