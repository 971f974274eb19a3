"""The catalogues: every message in every language, with the same fields; the shipped
texts they translate (claims, experiments' descriptions) still the English they hold; the
language chosen from --lang or the locale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.data import TOPOLOGIES_DIR
from lab.i18n import (
    DEFAULT_LANG,
    LANGS,
    catalogue,
    choose_lang,
    current_lang,
    fields,
    t,
    t_or,
    using,
)
from lab.spec.claims import CLAIM_SPECS
from lab.spec.topology import load_topology

CATALOGUES = Path(__file__).resolve().parents[2] / "lab" / "i18n"


def parity_problems(books: dict[str, dict[str, str]]) -> list[str]:
    """Ids one language has and another lacks, and ids whose fields differ."""
    ids = set().union(*books.values())
    problems = []
    for key in sorted(ids):
        missing = [lang for lang, book in books.items() if key not in book]
        if missing:
            problems.append(f"{key}: missing in {', '.join(missing)}")
            continue
        shapes = {lang: sorted(fields(book[key])) for lang, book in books.items()}
        if len({tuple(s) for s in shapes.values()}) > 1:
            problems.append(f"{key}: fields differ: {shapes}")
    return problems


def test_every_message_is_in_every_language_with_the_same_fields() -> None:
    books = {lang: dict(catalogue(lang)) for lang in LANGS}
    assert parity_problems(books) == []
    assert len(books["en"]) > 200


def test_a_message_missing_in_one_language_is_found() -> None:
    books = {"en": {"a": "one {n}", "b": "two"}, "zh": {"a": "一 {n}"}}
    assert parity_problems(books) == ["b: missing in zh"]


def test_a_field_that_differs_between_languages_is_found() -> None:
    books = {"en": {"a": "{n} of {total:.1f}"}, "zh": {"a": "{total} 中的 {m}"}}
    assert parity_problems(books) == [
        "a: fields differ: {'en': ['n', 'total'], 'zh': ['m', 'total']}"
    ]


def test_fields_are_read_by_name_whatever_their_format() -> None:
    assert fields("{a} {b:.2f} {c!r} {{not}} {d[0]}") == {"a", "b", "c", "d"}
    assert fields("no fields") == frozenset()


def test_the_files_are_flat_objects_of_text() -> None:
    for lang in LANGS:
        data = json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8"))
        assert all(isinstance(v, str) for v in data.values()), lang


def test_claims_are_translated_from_the_english_they_hold() -> None:
    for name, spec in CLAIM_SPECS.items():
        with using("en"):
            assert t(f"claim.{name}.summary") == spec.summary
            assert t(f"claim.{name}.name") == name
    with using("zh"):
        assert t("claim.handshake.name") == "三次握手"
        assert t("claim.four-way-close.name") == "四次挥手"
        assert "僵尸进程" in t("claim.children-reaped.summary")


def test_every_shipped_description_is_translated_from_the_english_it_holds() -> None:
    files = [p for p in TOPOLOGIES_DIR.rglob("*.yaml")]
    assert len(files) > 30
    for path in files:
        topo = load_topology(path)
        with using("en"):
            assert t(f"description.{topo.name}") == topo.description, path
        with using("zh"):
            assert t(f"description.{topo.name}") != topo.description, path


@pytest.mark.parametrize(
    ("given", "environ", "want"),
    [
        ("zh", {"LANG": "en_US.UTF-8"}, "zh"),
        ("en", {"LC_ALL": "zh_CN.UTF-8"}, "en"),
        (None, {"LANG": "zh_CN.UTF-8"}, "zh"),
        (None, {"LANG": "zh_TW.UTF-8"}, "zh"),
        (None, {"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
        (None, {"LC_ALL": "C.UTF-8", "LC_MESSAGES": "zh_CN.UTF-8"}, "en"),
        (None, {"LC_ALL": "", "LANG": "zh_CN"}, "zh"),
        (None, {"LANG": "fr_FR.UTF-8"}, "en"),
        (None, {}, "en"),
    ],
)
def test_the_language_comes_from_the_option_else_the_locale(
    given: str | None, environ: dict[str, str], want: str
) -> None:
    assert choose_lang(given, environ) == want


def test_using_holds_a_language_for_its_block_only() -> None:
    assert current_lang() == DEFAULT_LANG
    with using("zh"):
        assert t("report.fact.scenarios_passed", passed=1, total=2) == "1/2 通过"
        assert t_or("check.not a known check", "not a known check") == "not a known check"
        assert t_or("check.handshake", "handshake") == "三次握手"
    assert t("report.fact.scenarios_passed", passed=1, total=2) == "1/2 passed"
    with pytest.raises(ValueError, match="no language 'fr'"), using("fr"):
        pass
