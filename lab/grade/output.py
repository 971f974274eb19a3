"""What a grade looks like to people and to CI: the text table, JUnit XML (one testcase
per claim, the evidence in the failure's message), grade.html, a class's grades.csv and
its summary page."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from lab.grade.score import Grade, Row, first_line
from lab.i18n import DEFAULT_LANG, columns, current_lang, pad, reread, t, t_or
from lab.report.markup import badge, check_title, esc

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;"
    "text-align:left;vertical-align:top}.badge{padding:0 .4em;border-radius:.3em}"
    ".ok{background:#cfc}.bad{background:#fcc}.na{background:#eee}"
)


def _points(value: float) -> str:
    return f"{value:g}"


def grade_table(grade: Grade) -> str:
    """The grade for people, in the current language (claims keep their English ids in
    grade.json and JUnit XML)."""
    names = [check_title(r.claim) for r in grade.rows]
    width = max(columns(n) for n in [*names, t("grade.col.claim")])
    head = t("grade.head", submission=grade.submission, model=grade.model, backend=grade.backend)
    lines = [head, ""]
    claim, verdict = pad(t("grade.col.claim"), width), pad(t("grade.col.verdict"), 10)
    points = pad(t("grade.col.points"), 6, right=True)
    lines.append(f"{claim}  {verdict}  {points}  {t('grade.col.evidence')}")
    for r, name in zip(grade.rows, names, strict=True):
        pts = f"{_points(r.points)}/{_points(r.max_points)}"
        verdict = pad(t_or(f"grade.verdict.{r.verdict}", r.verdict), 10)
        lines.append(f"{pad(name, width)}  {verdict}  {pts:>6}  {first_line(r.text())}")
    total = f"{_points(grade.points)}/{_points(grade.max_points)}"
    verdict = t("badge.pass" if grade.passed else "badge.fail")
    lines += ["", t("grade.total", verdict=verdict, total=total, seconds=grade.seconds)]
    if grade.results:
        lines.append(t("grade.results", results=grade.results))
    return "\n".join(lines)


def junit_xml(grades: Sequence[Grade]) -> str:
    """One testsuite per submission, one testcase per claim."""
    suites = ET.Element("testsuites", name="lab grade")
    for g in grades:
        failures = sum(1 for r in g.rows if r.failed)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"{g.submission} ({g.model})",
            tests=str(len(g.rows)),
            failures=str(failures),
            skipped=str(sum(1 for r in g.rows if not r.judged)),
            time=f"{g.seconds:g}",
        )
        for r in g.rows:
            case = ET.SubElement(suite, "testcase", classname=g.submission, name=r.claim)
            if not r.judged:  # not judged: downstream of a failure counted elsewhere
                ET.SubElement(case, "skipped", message=first_line(r.evidence))
            elif not r.passed:
                failure = ET.SubElement(case, "failure", message=first_line(r.evidence))
                failure.text = r.evidence
            else:
                ET.SubElement(case, "system-out").text = r.evidence
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _verdict(row: Row) -> str:
    if not row.judged:
        return f'<span class="badge na">{esc(t("grade.not_judged"))}</span>'
    return badge(row.passed)


def grade_html(grade: Grade, has_report: bool) -> str:
    rows = "".join(
        f"<tr><td>{esc(check_title(r.claim))}</td><td>{_verdict(r)}</td>"
        f"<td>{esc(_points(r.points))}/{esc(_points(r.max_points))}</td>"
        f"<td><pre>{esc(r.text())}</pre></td></tr>"
        for r in grade.rows
    )
    link = f'<p><a href="report.html">{esc(t("grade.report_link"))}</a></p>' if has_report else ""
    title = t("grade.title", submission=grade.submission, model=grade.model)
    points = t(
        "grade.points_line",
        points=_points(grade.points),
        max_points=_points(grade.max_points),
        backend=grade.backend,
        seconds=grade.seconds,
    )
    heads = _heads("claim", "verdict", "points", "evidence")
    return (
        f'<!doctype html><html lang="{current_lang()}"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{esc(title)} {badge(grade.passed)}</h1><p>{esc(points)}</p>{link}"
        f"<table><tr>{heads}</tr>{rows}</table></body></html>\n"
    )


def verdict_text(grade: Grade) -> str:
    """The grade's one line (grade.json's ``verdict``, English) in the current language:
    the row it quotes put in words again, else read back by the catalogue."""
    if current_lang() == DEFAULT_LANG:
        return grade.verdict
    for r in grade.rows:
        if grade.verdict == f"{r.claim}: {first_line(r.evidence)}":
            return t("plain.claim_line", claim=check_title(r.claim), evidence=first_line(r.text()))
    return reread(grade.verdict, "grade.line.")


def class_table(grades: Sequence[Grade]) -> str:
    """A class's grades, one line per submission, in the current language."""
    width = max(columns(g.submission) for g in grades)
    lines = []
    for g in grades:
        verdict = pad(t("badge.pass" if g.passed else "badge.fail"), 4)
        pts = f"{g.points:g}/{g.max_points:g}"
        seconds = pad(t("grade.seconds_col", seconds=f"{g.seconds:6.1f}"), 8)
        lines.append(
            f"{pad(g.submission, width)}  {verdict}  {pts:>8}  {seconds}  {verdict_text(g)}"
        )
    return "\n".join(lines)


def _heads(*columns: str) -> str:
    return "".join(f"<th>{esc(t(f'grade.col.{c}'))}</th>" for c in columns)


def grades_csv(grades: Sequence[Grade]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["submission", "model", "passed", "points", "max_points", "seconds", "verdict"])
    for g in grades:
        row = [g.submission, g.model, "yes" if g.passed else "no", _points(g.points)]
        writer.writerow([*row, _points(g.max_points), f"{g.seconds:g}", g.verdict])
    return out.getvalue()


def class_html(grades: Sequence[Grade], links: Sequence[str]) -> str:
    rows = "".join(
        f'<tr><td><a href="{esc(link)}">{esc(g.submission)}</a></td><td>{badge(g.passed)}</td>'
        f"<td>{esc(_points(g.points))}/{esc(_points(g.max_points))}</td>"
        f"<td>{esc(t('grade.seconds', seconds=g.seconds))}</td><td>{esc(verdict_text(g))}</td></tr>"
        for g, link in zip(grades, links, strict=True)
    )
    heads = _heads("submission", "verdict", "points", "time", "first_failure")
    return (
        f'<!doctype html><html lang="{current_lang()}"><head><meta charset="utf-8">'
        f"<title>lab grade</title><style>{STYLE}</style></head><body>"
        f"<h1>{esc(t('grade.class_title', count=len(grades)))}</h1>"
        f"<table><tr>{heads}</tr>{rows}</table></body></html>\n"
    )
