"""A class at once: each sub-folder of a folder graded as one submission, each in its own
``lab grade`` process with a time limit, so that a crash, a fork bomb or an endless loop in
one submission touches no other. With ``jobs`` above 1, that many submissions are graded
at once, still each in its own process, run, uid and limits. A submission out of time is
stopped like a Ctrl-C (its lab torn down, its evidence kept) and, if that hangs too,
killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab.errors import UsageError
from lab.grade.hosts import Hosts
from lab.grade.output import class_html, grade_html, grades_csv
from lab.grade.score import Grade, Row
from lab.i18n import english, msg, t
from lab.run.backends.base import Backend

STOP_GRACE = 60.0  # seconds a stopped submission's grader has to tear its lab down
CSV_FILE = "grades.csv"
INDEX_PAGE = "index.html"


def submissions_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def is_class_folder(folder: Path) -> bool:
    """A folder of sub-folders and no source file of its own."""
    from lab.grade.submission import SOURCE_SUFFIXES

    if not folder.is_dir():
        return False
    own = [p for p in folder.iterdir() if p.is_file() and p.suffix in SOURCE_SUFFIXES]
    return not own and bool(submissions_in(folder))


def grade_from_json(doc: dict[str, object]) -> Grade:
    rows = doc["rows"]
    assert isinstance(rows, list)
    return Grade(
        submission=str(doc["submission"]),
        model=str(doc["model"]),
        backend=str(doc["backend"]),
        rows=tuple(Row(**r) for r in rows),
        seconds=float(str(doc["seconds"])),
        results=str(doc["results"]),
        verdict=str(doc["verdict"]),
    )


def class_preflight(
    folder: Path, model: str, port: int, hosts: Hosts, backend_cls: type[Backend]
) -> None:
    """The class's machines checked before any submission runs (exit 2 when unfit), once
    for each way of building its submissions (a compiler a language needs, missing, is
    the hosts' fault, not a student's). A sub-folder that is no submission is left to
    its own ``lab grade``, whose row says so."""
    from lab.grade.hosts import on_hosts, refuse_unfit
    from lab.grade.submission import grading_topology, read_submission

    seen: set[tuple[str, ...]] = set()
    topologies = []
    for sub in submissions_in(folder):
        try:
            topology = on_hosts(grading_topology(read_submission([sub]), model, port), hosts)
        except UsageError:
            continue
        program = topology.programs[0]
        how = (*program.build[:1], *program.run[:1])
        if how not in seen:
            seen.add(how)
            topologies.append(topology)
    for topology in topologies:
        refuse_unfit(topology, backend_cls, str(hosts.source))


def grade_class(
    folder: Path,
    out_dir: Path,
    options: Sequence[str],
    time_limit: float,
    say: Callable[[str], None],
    jobs: int = 1,
) -> list[Grade]:
    """Grade every sub-folder, ``jobs`` at a time; ``options`` are passed on to each
    ``lab grade``. The grades come back in the folders' order."""
    subs = submissions_in(folder)
    lock = threading.Lock()  # one progress line at a time

    def one(index: int, sub: Path) -> Grade:
        with lock:
            say(t("grade.progress", index=index, total=len(subs), name=sub.name))
        grade = _grade_apart(sub, out_dir / sub.name, options, time_limit)
        page = out_dir / sub.name / "grade.html"
        if not page.is_file():  # stopped, or refused before it could write its own
            page.parent.mkdir(parents=True, exist_ok=True)
            has_report = (page.parent / "report.html").is_file()
            page.write_text(grade_html(grade, has_report), encoding="utf-8")
        pts = t(
            "grade.progress_points",
            points=f"{grade.points:g}/{grade.max_points:g}",
            seconds=grade.seconds,
        )
        verdict = t("badge.pass" if grade.passed else "badge.fail")
        with lock:
            say(
                t(
                    "grade.progress_done",
                    index=index,
                    total=len(subs),
                    name=sub.name,
                    verdict=verdict,
                    points=pts,
                )
            )
        return grade

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(one, i, sub) for i, sub in enumerate(subs, start=1)]
        grades = [f.result() for f in futures]
    (out_dir / CSV_FILE).write_text(grades_csv(grades), encoding="utf-8")
    links = [f"{g.submission}/grade.html" for g in grades]
    (out_dir / INDEX_PAGE).write_text(class_html(grades, links), encoding="utf-8")
    return grades


def _grade_apart(sub: Path, out: Path, options: Sequence[str], limit: float) -> Grade:
    argv = [sys.executable, "-m", "lab.cli", "grade", str(sub), "--out", str(out)]
    argv += [*options, "--json", "--quiet"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.send_signal(signal.SIGINT)  # the grader tears its lab down, as on Ctrl-C
        try:
            stdout, stderr = proc.communicate(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
    try:
        grade = grade_from_json(json.loads(stdout))
    except (ValueError, KeyError, TypeError, AssertionError):
        grade = None
    if timed_out:
        said = msg("grade.ev.stopped_after", limit=limit)
        row = Row("within the time limit", False, english(said), 0.0, 0.0, said=said)
        base = grade.rows if grade is not None else ()
        return Grade(
            sub.name,
            _model(options),
            "",
            (*base, row),
            limit,
            str(out),
            english(msg("grade.line.over_time_limit", limit=limit)),
        )
    if grade is None:
        why = (stderr.strip().splitlines() or [english(msg("grade.no_grade"))])[-1]
        row = Row("graded", False, why, 0.0, 0.0)
        return Grade(sub.name, _model(options), "", (row,), 0.0, str(out), why)
    return grade


def _model(options: Sequence[str]) -> str:
    return options[options.index("--as") + 1] if "--as" in options else ""
