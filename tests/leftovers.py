"""What a run may have left on this machine, found independently of the lab's own code."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path


def netns_objects(run_id: str) -> list[str]:
    """Namespaces, links and temp dirs that carry the run id."""
    found = []
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [
        f"netns {line.split()[0]}" for line in ns.splitlines() if line.startswith(f"slab-{run_id}-")
    ]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(f"slab{run_id}"):
            found.append(f"link {name}")
    if Path(f"/tmp/socket-lab/{run_id}").exists():
        found.append(f"dir /tmp/socket-lab/{run_id}")
    return found


def live_pids(results: Path) -> list[int]:
    """PIDs recorded in a run's run.json (services, captures) that are still alive."""
    run = json.loads((results / "run.json").read_text())
    pids = [int(s["pid"]) for s in run.get("services", {}).values() if s.get("pid")]
    pids += [int(c["pid"]) for c in run.get("captures", []) if c.get("pid")]
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive


def run_id_of(results: Path) -> str:
    return str(json.loads((results / "run.json").read_text())["run_id"])


def signal_lab_run_at(
    topology: Path, out: Path, when: str, signum: int, cwd: Path, backend: str = "netns"
) -> tuple[subprocess.Popen[str], list[str]]:
    """Start `lab run` and send ``signum`` when a progress line contains ``when``.
    Returns the process (signalled, not yet waited for) and the progress lines read so far."""
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab.cli",
            "run",
            str(topology),
            "--backend",
            backend,
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if when in line:
            proc.send_signal(signum)
            break
    return proc, seen
