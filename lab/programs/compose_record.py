"""The first and last services of the compose lab: a clean results folder, then run.json.

``prepare`` runs before any node: a results folder left by an earlier ``up`` is kept under
its time (``compose`` becomes ``compose-YYYYmmddTHHMMSSZ``, the time its run started), so
every ``up`` starts from an empty one and its nodes never meet an old step marker.

``record`` runs once every node has completed (``lab.programs.compose_node``): it turns
the nodes' ``node.json`` files and the plan ``lab compose`` wrote into the compose file
(``--plan``, JSON: the topology's text, its nodes' addresses, services and scenarios) into
the ``run.json`` and ``topology.yaml`` of a ``lab run`` results folder, so that
``lab report`` judges it with the same checks, which it runs there and then (the node image
holds the lab and its PyYAML and dpkt), so that ``up`` alone ends with ``report.html``. It
then hands the files to the owner of the results folder (the containers write as root) and
says where they are.

Standard library only: this runs inside the node image.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FOLDER = "compose"
SYNC = ".sync"
NODE_FILE = "node.json"
RUN_SCHEMA_VERSION = 1  # of lab.run.record (a test keeps them the same)
STAMP = "%Y%m%dT%H%M%SZ"


def prepare(root: Path) -> int:
    """Move the previous results aside under their time; an empty folder for this run."""
    folder = root / FOLDER
    if folder.exists() and any(folder.iterdir()):
        started = folder / "run.json"
        when = (started if started.exists() else folder).stat().st_mtime
        target = root / f"{FOLDER}-{time.strftime(STAMP, time.gmtime(when))}"
        while target.exists():
            target = target.with_name(target.name + "+")
        folder.rename(target)
        print(f"previous results kept in results/{target.name}", flush=True)
    (folder / SYNC).mkdir(parents=True, exist_ok=True)
    return 0


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def client_record(outcome: dict[str, Any] | None) -> dict[str, Any]:
    """A ``ClientRecord`` of run.json from what the node kept of one client."""
    if outcome is None:
        return {"returncode": None, "result": None, "stderr": "", "error": "client did not run"}
    result = load_text_json(str(outcome.get("stdout", "")))
    error = outcome.get("error")
    if result is None and error is None:
        last = str(outcome.get("stderr", "")).strip().splitlines()[-1:]
        error = f"exit status {outcome.get('returncode')}" + (f": {last[0]}" if last else "")
    return {
        "returncode": outcome.get("returncode"),
        "result": result,
        "stderr": outcome.get("stderr", ""),
        "error": None if result is not None else error,
    }


def load_text_json(text: str) -> Any:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def run_record(plan: dict[str, Any], facts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """run.json (``lab.run.record.RunRecord``) from the plan and every node's facts."""
    nodes: dict[str, Any] = {}
    captures: list[dict[str, Any]] = []
    node_errors: list[dict[str, str]] = []
    for name, addresses in plan["nodes"].items():
        fact = facts.get(name) or {}
        by_address = {v: k for k, v in (fact.get("interfaces") or {}).items() if v}
        interfaces = {net: by_address.get(addr, "?") for net, addr in addresses.items()}
        nodes[name] = {"interfaces": interfaces}
        network_of = {iface: net for net, iface in interfaces.items()}
        for cap in fact.get("captures", []):
            iface = cap["interface"]
            captures.append(
                {"node": name, "interface": iface, "network": network_of.get(iface, "?"),
                 "file": f"{iface}.pcap", "pid": cap["pid"]}
            )  # fmt: skip
        if not fact:
            node_errors.append({"node": name, "step": "collect", "error": "no node.json"})
        for step, error in fact.get("errors", []):
            node_errors.append({"node": name, "step": step, "error": error})
    services = {}
    for name, service in plan["services"].items():
        ran = (facts.get(service["node"]) or {}).get("services", {}).get(name)
        if ran is None:
            continue
        entry = {**service, "pid": ran["pid"], "log": f"{service['node']}/{ran['log']}"}
        if "ended_before_stop" in ran:
            entry["ended_before_stop"] = ran["ended_before_stop"]
            entry["exit_status"] = ran.get("exit_status")
        for key in ("restarted_as", "killed_after_grace", "log_truncated"):
            if key in ran:
                entry[key] = ran[key]
        services[name] = entry
    scenarios = {name: scenario_record(plan, facts, name) for name in plan["scenarios"]}
    began = [f["started"] for f in facts.values() if "started" in f]
    ended = [f["ended"] for f in facts.values() if "ended" in f]
    every = [(facts.get(name) or {}).get("phases", []) for name in plan["nodes"]]
    phases = [p for p in ("before", "during", "after", "final") if all(p in e for e in every)]
    run = {
        "schema_version": RUN_SCHEMA_VERSION,
        "run_id": secrets.token_hex(3),
        "topology": plan["topology"],
        "backend": "compose",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(min(began, default=0))),
        "out_dir": "results/compose",
        "timings": {"run": round(max(ended, default=0) - min(began, default=0), 3)},
        "nodes": nodes,
        "services": services,
        "scenarios": scenarios,
        "captures": captures,
        "phases": phases,
        "error": None if not node_errors else f"{len(node_errors)} node errors",
        "teardown_errors": [],
        "failed_step": None,
        "interrupted": None,
        "node_errors": node_errors,
    }
    watch = watch_record(plan, facts)
    return {**run, "watch": watch} if watch else run


def watch_record(plan: dict[str, Any], facts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each round of a ``watch`` once, at the time its first node began it: every node
    takes a round at the same moment, and ``lab run`` keeps the time a round began."""
    began: dict[str, float] = {}
    for name in plan["nodes"]:
        for taken in (facts.get(name) or {}).get("watch", []):
            phase, at = str(taken["phase"]), float(taken["time"])
            began[phase] = min(began.get(phase, at), at)
    return [{"phase": phase, "time": at} for phase, at in sorted(began.items())]


def scenario_record(
    plan: dict[str, Any], facts: dict[str, dict[str, Any]], name: str
) -> dict[str, Any]:
    """A scenario's clients, and its restarts as the service's node did them."""
    sc = plan["scenarios"][name]
    record: dict[str, Any] = {
        "service": sc["service"],
        "clients": {
            node: client_record((facts.get(node) or {}).get("clients", {}).get(job))
            for node, job in sc["clients"].items()
        },
    }
    server = facts.get(plan["services"][sc["service"]]["node"]) or {}
    restarts = (server.get("restarts") or {}).get(name)
    if restarts:
        record["restarts"] = restarts
    return record


def hand_over(root: Path, folder: Path) -> None:
    """The results to the owner of the results folder (the one who ran ``up``)."""
    owner = root.stat()
    if owner.st_uid == os.getuid():
        return
    for path in [folder, *folder.rglob("*")]:
        try:
            os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)
        except OSError:
            return  # no CAP_CHOWN: the files stay root's, which is still readable


def record(root: Path, plan: dict[str, Any]) -> int:
    folder = root / FOLDER
    facts = {}
    for name in plan["nodes"]:
        data = load_json(folder / name / NODE_FILE)
        facts[name] = data if isinstance(data, dict) else {}
    (folder / "topology.yaml").write_text(plan["text"])
    run = run_record(plan, facts)
    (folder / "run.json").write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n")
    shutil.rmtree(folder / SYNC, ignore_errors=True)
    judged = judge(folder)
    hand_over(root, folder)
    if judged is None:
        print(
            "results/compose is a complete results folder; "
            "`lab report results/compose` judges it and writes results/compose/report.html",
            flush=True,
        )
        return 0
    print("the report: results/compose/report.html", flush=True)
    return judged


def judge(folder: Path) -> int | None:
    """``lab report`` on the folder, in this container: its exit code, or None when the
    image has no copy of the lab that can judge (its PyYAML and dpkt are missing)."""
    try:
        ready = subprocess.run(
            [sys.executable, "-c", "import yaml, dpkt, lab.cli"], capture_output=True, check=False
        )
    except OSError:
        return None
    if ready.returncode != 0:
        return None
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", "report", str(folder)], check=False
    ).returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m lab.programs.compose_record")
    parser.add_argument("step", choices=("prepare", "record"))
    parser.add_argument("--root", type=Path, required=True, help="the mounted results/")
    parser.add_argument("--plan", help="JSON plan of the run (record)")
    args = parser.parse_args(argv)
    if args.step == "prepare":
        return prepare(args.root)
    if not args.plan:
        parser.error("record needs --plan")
    return record(args.root, json.loads(args.plan))


if __name__ == "__main__":
    sys.exit(main())
