"""What a grade looks like to people and to CI: the text table, JUnit XML (one testcase
per claim, the evidence in the failure's message), grade.html, a class's grades.csv and
its summary page."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from lab.grade.score import Grade, Row, first_line
from lab.report.markup import badge, esc

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;"
    "text-align:left;vertical-align:top}.badge{padding:0 .4em;border-radius:.3em}"
    ".ok{background:#cfc}.bad{background:#fcc}.na{background:#eee}"
)


def _points(value: float) -> str:
    return f"{value:g}"


def grade_table(grade: Grade) -> str:
    width = max(len(r.claim) for r in grade.rows)
    lines = [f"{grade.submission} as a {grade.model} server on {grade.backend}", ""]
    lines.append(f"{'claim':{width}}  verdict     points  evidence")
    for r in grade.rows:
        pts = f"{_points(r.points)}/{_points(r.max_points)}"
        lines.append(f"{r.claim:{width}}  {r.verdict:10}  {pts:>6}  {first_line(r.evidence)}")
    total = f"{_points(grade.points)}/{_points(grade.max_points)}"
    lines += ["", f"{'PASS' if grade.passed else 'FAIL'}  {total} points  in {grade.seconds:g} s"]
    if grade.results:
        lines.append(f"results: {grade.results}")
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
        return '<span class="badge na">not judged</span>'
    return badge(row.passed)


def grade_html(grade: Grade, has_report: bool) -> str:
    rows = "".join(
        f"<tr><td>{esc(r.claim)}</td><td>{_verdict(r)}</td>"
        f"<td>{esc(_points(r.points))}/{esc(_points(r.max_points))}</td>"
        f"<td><pre>{esc(r.evidence)}</pre></td></tr>"
        for r in grade.rows
    )
    link = '<p><a href="report.html">The run\'s evidence: report.html</a></p>' if has_report else ""
    title = f"{grade.submission}: {grade.model} server"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{esc(title)} {badge(grade.passed)}</h1>"
        f"<p>{esc(_points(grade.points))}/{esc(_points(grade.max_points))} points on "
        f"{esc(grade.backend)} in {grade.seconds:g} s</p>{link}"
        f"<table><tr><th>claim</th><th>verdict</th><th>points</th><th>evidence</th></tr>"
        f"{rows}</table></body></html>\n"
    )


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
        f"<td>{g.seconds:g} s</td><td>{esc(g.verdict)}</td></tr>"
        for g, link in zip(grades, links, strict=True)
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>lab grade</title>'
        f"<style>{STYLE}</style></head><body><h1>lab grade: {len(grades)} submissions</h1>"
        "<table><tr><th>submission</th><th>verdict</th><th>points</th><th>time</th>"
        f"<th>first failure</th></tr>{rows}</table></body></html>\n"
    )
