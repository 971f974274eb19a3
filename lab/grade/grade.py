"""Grading one submission: its topology built, run with the grading steps, judged and
scored; ``grade.json``, ``grade.html`` (and report.html, the run's own page) in its
results folder."""

from __future__ import annotations

import json
import time
from pathlib import Path

from lab.errors import Interrupted
from lab.grade.flow import grade_run, load_facts
from lab.grade.hosts import Hosts, on_hosts
from lab.grade.output import grade_html
from lab.grade.score import Grade, first_line, score
from lab.grade.submission import Submission, grading_topology
from lab.grade.weights import Weights
from lab.i18n import english, msg
from lab.report.record import Summary
from lab.report.summary import finish_run
from lab.run.backends.base import Backend
from lab.run.record import RUN_FILE, load_run
from lab.run.sealing import seal_results
from lab.run.session import Progress

GRADE_FILE = "grade.json"
GRADE_PAGE = "grade.html"


def grade_one(
    sub: Submission,
    model: str,
    port: int,
    backend_cls: type[Backend],
    out_dir: Path,
    weights: Weights,
    say: Progress,
    hosts: Hosts | None = None,
) -> Grade:
    """Grade ``sub`` (on ``hosts``, existing machines, when given); raises only for the
    grader's own trouble (an interrupt)."""
    start = time.monotonic()
    topology = on_hosts(grading_topology(sub, model, port), hosts)
    kind = {"dict": "dict", "udp": "udp"}.get(model, "echo")
    record, error = grade_run(topology, backend_cls, out_dir, kind, say)
    summary: Summary | None = None
    if (out_dir / RUN_FILE).is_file():
        if record is None:
            record = load_run(out_dir)
        try:
            summary = finish_run(out_dir, topology)
        except Interrupted:
            raise
        except Exception as exc:  # the grade is still written, with what is known
            error = error or english(msg("error.run_not_judged", why=exc))
    rows = score(model, weights, summary, record, load_facts(out_dir), error)
    failed = [r for r in rows if r.failed] or [r for r in rows if not r.passed]
    verdict = (
        f"{failed[0].claim}: {first_line(failed[0].evidence)}" if failed else "all claims pass"
    )
    grade = Grade(
        submission=sub.name,
        model=model,
        backend=backend_cls.name,
        rows=tuple(rows),
        seconds=round(time.monotonic() - start, 1),
        results=str(out_dir),
        verdict=verdict,
    )
    doc = json.dumps(grade.to_json(), indent=2, ensure_ascii=False)
    (out_dir / GRADE_FILE).write_text(doc, encoding="utf-8")
    has_report = (out_dir / "report.html").is_file()
    (out_dir / GRADE_PAGE).write_text(grade_html(grade, has_report), encoding="utf-8")
    seal_results(out_dir)
    return grade
