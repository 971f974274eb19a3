"""What every part of report.html shares: escaping, sections, badges, the page's style
sheets and script (files under ``lab/report/assets``), and reading a results folder's
text files.

Every value that comes from a file, a topology or a capture goes through :func:`esc`
before it reaches the page.
"""

from __future__ import annotations

import html
from functools import cache
from importlib.resources import files
from pathlib import Path

from lab.evidence.analysis.files import EvidenceFileError
from lab.evidence.analysis.files import read_text as read_evidence_text
from lab.evidence.records import EndRecord
from lab.i18n import t, t_or

# A probe program's call as drawn on a sequence diagram: (time, text, failed).
Call = tuple[float, str, bool]


def esc(value: object) -> str:
    """Text safe in element content and in quoted attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


@cache
def asset(name: str) -> str:
    """A file of ``lab/report/assets``, read from the installed package so that the page
    can inline it: report.html fetches nothing."""
    return files("lab.report").joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def section(title: str, anchor: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def badge(passed: bool | None, yes: str | None = None, no: str | None = None) -> str:
    """PASS or FAIL (or ``yes``/``no``), in the page's language."""
    if passed is None:
        return f'<span class="badge na">{esc(t("badge.na"))}</span>'
    word = (yes or t("badge.pass")) if passed else (no or t("badge.fail"))
    return f'<span class="badge {"ok" if passed else "bad"}">{esc(word)}</span>'


# The suffixes lab.verdict.bugs gives a spot-the-bug check's name, by catalogue id.
BUG_SUFFIXES = (("race", " (bug, a race)"), ("bug", " (bug)"))


def check_title(name: str) -> str:
    """A check's name in the current language. summary.json keeps the English name, the
    check's stable id; a spot-the-bug check is its claim's name with a suffix. A name the
    catalogue does not know stays as it is."""
    for suffix, english in BUG_SUFFIXES:
        if name.endswith(english):
            base = name[: -len(english)]
            return t_or(f"check.{base}", base) + t(f"check.suffix.{suffix}")
    family, _, case = name.partition(": ")
    if family == "hostile" and case:  # lab grade's hostile clients, one claim per case
        return t("check_family.hostile", case=case)
    return t_or(f"check.{name}", name)


def read_text(path: Path) -> str | None:
    """A snapshot or log of the folder, or None when the run did not leave it or it cannot
    be read (summary.json's evidence problems say which and why)."""
    try:
        return read_evidence_text(path)
    except EvidenceFileError:
        return None


def end(side: EndRecord) -> str:
    """One end of a connection or flow: its node's name when known, else its address."""
    return f"{side.node or side.ip}:{side.port}"
