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


def badge(passed: bool | None, yes: str = "PASS", no: str = "FAIL") -> str:
    if passed is None:
        return '<span class="badge na">n/a</span>'
    return f'<span class="badge {"ok" if passed else "bad"}">{yes if passed else no}</span>'


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
