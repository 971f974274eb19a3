"""summary.json and the human summary of a results folder."""

from __future__ import annotations

import json
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

from lab.errors import READ_BACK, LabError, UsageError
from lab.evidence.connections import connection_evidence
from lab.evidence.folder import Evidence, refused_line, unreadable_files
from lab.evidence.records import TcpRecord, UdpRecord
from lab.i18n import Msg, current_lang, english, msg, pad, reread, t, t_or, using
from lab.report.markup import check_title
from lab.report.page import render_report
from lab.report.record import SUMMARY_FILE, ScenarioVerdict, Summary
from lab.run.live import live_scenarios
from lab.run.record import RUN_FILE, RunRecord, load_run
from lab.run.runner import TOPOLOGY_COPY
from lab.run.sealing import seal_results
from lab.spec.codec import RecordError
from lab.spec.keys import BUILTIN_CHECKS
from lab.spec.model import Scenario, Topology
from lab.verdict.bugs import judged
from lab.verdict.checks import Check, scenario_checks

REPORT_FILE = "report.html"


def build_summary(out_dir: Path, topology: Topology) -> Summary:
    """Judge a results folder: every scenario's checks, plus what stopped the run if
    anything did. A run that failed part-way is judged on the evidence it left."""
    ev = Evidence.load(out_dir)
    run = ev.record
    scenarios = []
    for sc in topology.scenarios:
        if run.failed_step:
            said = msg("detail.stopped_during", step=run.failed_step)
            checks = [Check.said("run completed", False, said)]
        else:
            ran = [
                judged(c, sc.bug, "service-ran") if c.name == BUILTIN_CHECKS["service-ran"] else c
                for c in service_checks(topology, run, sc)
            ]
            checks = scenario_checks(topology, ev, sc) + ran
        passed = all(c.passed for c in checks)
        scenarios.append(ScenarioVerdict(sc.name, sc.service, passed, checks))
    damaged = ev.all_problems()
    passed = (
        run.error is None
        and not run.node_errors
        and not any(p.fails_checks for p in damaged)
        and all(s.passed for s in scenarios)
    )
    connections, udp_flows = connection_evidence(out_dir, topology, run, read=ev.packets)
    summary = _summary(topology, run, passed, scenarios, connections, udp_flows)
    summary.evidence_problems = damaged
    return summary


def _summary(
    topology: Topology,
    run: RunRecord,
    passed: bool,
    scenarios: list[ScenarioVerdict],
    connections: list[TcpRecord],
    udp_flows: list[UdpRecord],
) -> Summary:
    return Summary(
        topology=topology.name,
        backend=run.backend,
        run_id=run.run_id,
        started=run.started,
        passed=passed,
        error=run.error,
        failed_step=run.failed_step,
        interrupted=run.interrupted,
        node_errors=list(run.node_errors),
        teardown_errors=run.teardown_errors,
        timings=run.timings,
        nodes=run.nodes,
        scenarios=scenarios,
        connections=connections,
        udp_flows=udp_flows,
    )


def service_checks(topology: Topology, run: RunRecord, sc: Scenario) -> list[Check]:
    """The scenario's service ran until the lab stopped it. A server that crashed or was
    killed mid-run can leave every reply right (its children serve on) and still be a
    failed run. A run stopped before its services were gets no such check."""
    info = run.services.get(sc.service)
    if info is None or info.ended_before_stop is None:
        return []
    service = topology.service(sc.service)
    who = msg("detail.who", program=service.program, pid=info.pid, node=service.node)
    if info.killed_after_grace:
        said = msg("detail.service_killed", who=who)
        return [Check.said("service stopped on SIGTERM", False, said)]
    if not info.ended_before_stop:
        return [Check.said("service ran until stopped", True, msg("detail.service_ran", who=who))]
    how = _status_text(info.exit_status)
    said = msg("detail.service_ended", who=who, how=how)
    return [Check.said("service ran until stopped", False, said)]


def _status_text(status: Any) -> Msg:
    if not isinstance(status, int):
        return msg("detail.status.unknown")
    if status < 0:
        try:
            return msg("detail.status.killed_by", name=signal.Signals(-status).name)
        except ValueError:
            return msg("detail.status.killed_by_signal", n=-status)
    return msg("detail.status.exit", n=status)


def finish_run(out_dir: Path, topology: Topology, lang: str | None = None) -> Summary:
    """Write summary.json and report.html for a run that just ended (however it ended).
    Evidence that cannot be judged (say a capture cut short) still leaves a summary.json
    that says so, failed, with what run.json recorded. The page is in ``lang`` (default:
    the current language); summary.json is the same in every language."""
    topology = judged_topology(out_dir, topology)
    try:
        summary = build_summary(out_dir, topology)
    except Exception as exc:  # a summary must exist whatever the evidence looks like
        summary = _fallback_summary(out_dir, topology, f"{type(exc).__name__}: {exc}")
    doc = summary.to_json()
    (out_dir / SUMMARY_FILE).write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    lang = lang or current_lang()
    try:
        html = render_report(out_dir, summary, topology, lang=lang)
    except Exception as exc:
        with using(lang):
            why = t("report.no_report", error=type(exc).__name__)
        html = f"<!doctype html><title>report</title><p>{why}</p>"
    (out_dir / REPORT_FILE).write_text(html, encoding="utf-8")
    return summary


def judged_topology(out_dir: Path, topology: Topology) -> Topology:
    """A live lab is judged on the scenarios the user ran in it, not on every one of its
    file: a connection made by hand is then never taken for a scenario that did not run."""
    ran = live_scenarios(out_dir)
    if ran is None:
        return topology
    return replace(topology, scenarios=tuple(sc for sc in topology.scenarios if sc.name in ran))


def _fallback_summary(out_dir: Path, topology: Topology, why: str) -> Summary:
    check = Check.said("evidence judged", False, msg("detail.not_judged_at_all", why=why))
    scenarios = [ScenarioVerdict(sc.name, sc.service, False, [check]) for sc in topology.scenarios]
    try:
        run = load_run(out_dir)
    except RecordError as exc:  # not even run.json is readable: say so, and why
        run = RunRecord("?", topology.name, "?", "?", str(out_dir), error=str(exc))
    summary = _summary(topology, run, False, scenarios, [], [])
    summary.error = run.error or english(msg("error.not_judged", why=why))
    return summary


def failure_line(summary: Summary) -> str | None:
    """One line naming what failed in a run that ended without an error of its own: the
    first failing check (and how many more), or the first node that could not be read."""
    failed = [
        f"{sc.name}: {check_title(c.name)}: {c.text()}"
        for sc in summary.scenarios
        for c in sc.checks
        if not c.passed
    ]
    failed += [
        t("failure.node", node=e.node, step=e.step, error=e.error) for e in summary.node_errors
    ]
    failed += [t("failure.damaged", problem=p) for p in summary.evidence_problems if p.fails_checks]
    if summary.passed or not failed:
        return None
    more = t("failure.more", n=len(failed) - 1) if len(failed) > 1 else ""
    return t("failure.line", first=failed[0], more=more)


def regenerate(out_dir: Path, lang: str | None = None) -> Summary:
    """``lab report DIR``: judge a results folder again from the topology saved in it, and
    rewrite its summary.json and report.html (in ``lang``) and nothing else. A run.json of
    another version is refused before anything in the folder is written."""
    from lab.spec.topology import load_topology

    source = out_dir / TOPOLOGY_COPY
    # Present in any form (a FIFO, a link to a device): the readers say what is wrong.
    not_results = msg("error.not_results", folder=str(out_dir))
    if not (out_dir / RUN_FILE).is_symlink() and not (out_dir / RUN_FILE).exists():
        raise LabError.said(not_results)
    if not source.is_symlink() and not source.exists():
        raise LabError.said(not_results)
    unreadable = unreadable_files(out_dir, load_run(out_dir))
    if unreadable:
        raise UsageError.said(refused_line(out_dir, unreadable))
    # The user programs' sources stay where the run found them, not in the folder (their
    # copies are in programs/NAME): the copy of the topology is judged without them.
    summary = finish_run(out_dir, load_topology(source, sources=False), lang)
    seal_results(out_dir)  # the rewritten files too: no umask makes them others' to change
    return summary


def format_summary(summary: Summary, lang: str | None = None) -> str:
    """A short table per scenario with its checks, then the verdict and timings, in
    ``lang`` (default: the current language)."""
    with using(lang or current_lang()):
        return _format_summary(summary)


def _format_summary(summary: Summary) -> str:
    head = t(
        "summary.head", topology=summary.topology, backend=summary.backend, run_id=summary.run_id
    )
    lines = [head, ""]
    names = {c.name: check_title(c.name) for sc in summary.scenarios for c in sc.checks}
    width = 38  # columns of a check's name, CJK characters counted as two
    for sc in summary.scenarios:
        lines.append(
            f"{t('summary.pass' if sc.passed else 'summary.fail')}  {sc.name}  ({sc.service})"
        )
        for c in sc.checks:
            mark = pad(t("summary.ok" if c.passed else "summary.fail"), 4)
            lines.append(f"      {mark}  {pad(names[c.name], width)} {c.text()}")
    tm = summary.timings
    lines.append("")
    spent = [
        t("summary.timing", phase=t_or(f"phase.{k}", k), seconds=tm[k])
        for k in ("up", "run", "collect", "down")
        if k in tm
    ]
    lines.append(t("summary.timings", timings=t("list.sep").join(spent)))
    if summary.error:
        lines.append(t("summary.error", error=reread(summary.error, READ_BACK)))
    lines += [t("summary.damaged", problem=p) for p in summary.evidence_problems]
    lines.append(verdict_line(summary))
    return "\n".join(lines)


def verdict_line(summary: Summary) -> str:
    """The last line: never "FAILED: 4/4 scenarios passed" without saying why, and an
    interrupted run says so, as its exit status (130 after Ctrl-C) does."""
    count = f"{sum(s.passed for s in summary.scenarios)}/{len(summary.scenarios)}"
    if summary.interrupted:
        return t("verdict.line.interrupted", how=summary.interrupted, count=count)
    if summary.passed:
        return t("verdict.line.passed", count=count)
    if all(s.passed for s in summary.scenarios):
        if any(p.fails_checks for p in summary.evidence_problems):
            why = t("verdict.why.damaged")
        else:
            why = t("verdict.why.run_failed" if summary.error else "verdict.why.node")
        return t("verdict.line.failed_but", count=count, why=why)
    return t("verdict.line.failed", count=count)
