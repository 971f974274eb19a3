"""summary.json and the human summary of a results folder."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.evidence.connections import connection_evidence
from lab.evidence.folder import Evidence
from lab.report.page import render_report
from lab.run.runner import TOPOLOGY_COPY
from lab.spec.model import Scenario, Topology
from lab.verdict.checks import Check, scenario_checks

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"


def build_summary(out_dir: Path, topology: Topology) -> dict[str, Any]:
    """Judge a results folder: every scenario's checks, plus what stopped the run if
    anything did. A run that failed part-way is judged on the evidence it left."""
    ev = Evidence.load(out_dir)
    run = ev.run
    scenarios = []
    for sc in topology.scenarios:
        checks = scenario_checks(topology, ev, sc) if not run.get("failed_step") else []
        if run.get("failed_step"):
            checks = [Check("run completed", False, f"stopped during {run['failed_step']}")]
        else:
            checks += service_checks(topology, run, sc)
        scenarios.append(
            {
                "name": sc.name,
                "service": sc.service,
                "passed": all(c.passed for c in checks),
                "checks": [c.to_dict() for c in checks],
            }
        )
    node_errors = list(run.get("node_errors") or [])
    passed = run.get("error") is None and not node_errors and all(s["passed"] for s in scenarios)
    connections, udp_flows = connection_evidence(out_dir, topology, run)
    return {
        "topology": topology.name,
        "backend": run.get("backend"),
        "run_id": run.get("run_id"),
        "started": run.get("started"),
        "passed": passed,
        "error": run.get("error"),
        "failed_step": run.get("failed_step"),
        "interrupted": run.get("interrupted"),
        "node_errors": node_errors,
        "teardown_errors": run.get("teardown_errors", []),
        "timings": run.get("timings", {}),
        "nodes": run.get("nodes", {}),
        "scenarios": scenarios,
        "connections": connections,
        "udp_flows": udp_flows,
    }


def service_checks(topology: Topology, run: dict[str, Any], sc: Scenario) -> list[Check]:
    """The scenario's service ran until the lab stopped it. A server that crashed or was
    killed mid-run can leave every reply right (its children serve on) and still be a
    failed run. Folders from before this was recorded get no such check."""
    info = (run.get("services") or {}).get(sc.service) or {}
    if "ended_before_stop" not in info:
        return []
    service = topology.service(sc.service)
    who = f"{service.program} (pid {info.get('pid')}) on {service.node}"
    if not info["ended_before_stop"]:
        return [Check("service ran until stopped", True, f"{who} ran until the lab stopped it")]
    how = _status_text(info.get("exit_status"))
    return [
        Check("service ran until stopped", False, f"{who} ended before the lab stopped it: {how}")
    ]


def _status_text(status: Any) -> str:
    if not isinstance(status, int):
        return "exit status unknown"
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def finish_run(out_dir: Path, topology: Topology) -> dict[str, Any]:
    """Write summary.json and report.html for a run that just ended (however it ended).
    Evidence that cannot be judged (say a capture cut short) still leaves a summary.json
    that says so, failed, with what run.json recorded."""
    try:
        summary = build_summary(out_dir, topology)
    except Exception as exc:  # a summary must exist whatever the evidence looks like
        summary = _fallback_summary(out_dir, topology, f"{type(exc).__name__}: {exc}")
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    try:
        html = render_report(out_dir, summary, topology, summary["connections"])
    except Exception as exc:
        html = f"<!doctype html><title>report</title><p>no report: {type(exc).__name__}</p>"
    (out_dir / REPORT_FILE).write_text(html, encoding="utf-8")
    return summary


def _fallback_summary(out_dir: Path, topology: Topology, why: str) -> dict[str, Any]:
    run: dict[str, Any] = json.loads((out_dir / "run.json").read_text())
    check = Check("evidence judged", False, f"could not judge the evidence: {why}")
    return {
        "topology": topology.name,
        "backend": run.get("backend"),
        "run_id": run.get("run_id"),
        "started": run.get("started"),
        "passed": False,
        "error": run.get("error") or f"could not judge the evidence: {why}",
        "failed_step": run.get("failed_step"),
        "interrupted": run.get("interrupted"),
        "node_errors": run.get("node_errors", []),
        "teardown_errors": run.get("teardown_errors", []),
        "timings": run.get("timings", {}),
        "nodes": run.get("nodes", {}),
        "scenarios": [
            {"name": sc.name, "service": sc.service, "passed": False, "checks": [check.to_dict()]}
            for sc in topology.scenarios
        ],
        "connections": [],
        "udp_flows": [],
    }


def failure_line(summary: dict[str, Any]) -> str | None:
    """One line naming what failed in a run that ended without an error of its own: the
    first failing check (and how many more), or the first node that could not be read."""
    failed = [
        f"{sc['name']}: {c['name']}: {c['detail']}"
        for sc in summary["scenarios"]
        for c in sc["checks"]
        if not c["passed"]
    ]
    failed += [
        f"node {e['node']} ({e['step']}): {e['error']}" for e in summary.get("node_errors", [])
    ]
    if summary["passed"] or not failed:
        return None
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    return f"run failed: {failed[0]}{more}"


def regenerate(out_dir: Path) -> dict[str, Any]:
    """``lab report DIR``: judge a results folder again from the topology saved in it."""
    from lab.spec.topology import load_topology

    source = out_dir / TOPOLOGY_COPY
    if not (out_dir / "run.json").is_file() or not source.is_file():
        raise LabError(f"{out_dir}: not a results folder of `lab run` (no run.json/topology.yaml)")
    return finish_run(out_dir, load_topology(source))


def format_summary(summary: dict[str, Any]) -> str:
    """A short table per scenario with its checks, then the verdict and timings."""
    lines = [f"{summary['topology']} on {summary['backend']} (run {summary['run_id']})", ""]
    for sc in summary["scenarios"]:
        mark = "PASS" if sc["passed"] else "FAIL"
        lines.append(f"{mark}  {sc['name']}  ({sc['service']})")
        for c in sc["checks"]:
            lines.append(f"      {'ok  ' if c['passed'] else 'FAIL'}  {c['name']:38} {c['detail']}")
    t = summary.get("timings", {})
    lines.append("")
    lines.append(
        "timings: "
        + ", ".join(f"{k} {t[k]:.1f}s" for k in ("up", "run", "collect", "down") if k in t)
    )
    if summary.get("error"):
        lines.append(f"error: {summary['error']}")
    verdict = "PASSED" if summary["passed"] else "FAILED"
    lines.append(
        f"{verdict}: {sum(s['passed'] for s in summary['scenarios'])}"
        f"/{len(summary['scenarios'])} scenarios passed"
    )
    return "\n".join(lines)
