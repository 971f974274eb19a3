"""summary.json and the human summary of a results folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lab.checks import Check, Evidence, scenario_checks
from lab.connections import connection_evidence
from lab.errors import LabError
from lab.html import render_report
from lab.model import Topology
from lab.runner import TOPOLOGY_COPY

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
        scenarios.append(
            {
                "name": sc.name,
                "service": sc.service,
                "passed": all(c.passed for c in checks),
                "checks": [c.to_dict() for c in checks],
            }
        )
    passed = run.get("error") is None and all(s["passed"] for s in scenarios)
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
        "timings": run.get("timings", {}),
        "nodes": run.get("nodes", {}),
        "scenarios": scenarios,
        "connections": connections,
        "udp_flows": udp_flows,
    }


def finish_run(out_dir: Path, topology: Topology) -> dict[str, Any]:
    """Write summary.json and report.html for a run that just ended (however it ended)."""
    summary = build_summary(out_dir, topology)
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    html = render_report(out_dir, summary, topology, summary["connections"])
    (out_dir / REPORT_FILE).write_text(html, encoding="utf-8")
    return summary


def regenerate(out_dir: Path) -> dict[str, Any]:
    """``lab report DIR``: judge a results folder again from the topology saved in it."""
    from lab.topology import load_topology

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
