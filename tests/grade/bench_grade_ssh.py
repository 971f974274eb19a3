"""What one ``lab grade`` of the course's C fork server costs over SSH: on four sshd hosts
in namespaces (tests/ssh/hosts.py), its wall time and the pre-flight's share; with
``--netns``, the same grade on the netns backend beside it.

    PYTHONPATH=$PWD python3 -m tests.grade.bench_grade_ssh [--user root|socketlab] [--netns]

Needs root, sshd and (for --user socketlab, the default where it exists) .ci/setup.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.grade.hosts import on_hosts, read_hosts
from lab.grade.submission import grading_topology, read_submission
from lab.run.backends.ssh.backend import SshBackend
from lab.spec.model import Topology
from tests.grade.test_ssh import FORK, machines
from tests.labcli import ROOT
from tests.ssh.hosts import World, default_user, make_world


def timed_grade(out: Path, *options: str) -> tuple[float, dict[str, object]]:
    argv = [sys.executable, "-m", "lab.cli", "grade", *map(str, FORK), "--as", "fork"]
    start = time.monotonic()
    done = subprocess.run(
        [*argv, *options, "--out", str(out), "--json", "--quiet"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    wall = time.monotonic() - start
    if not done.stdout.strip():
        raise SystemExit(f"lab grade failed ({done.returncode}): {done.stderr[-2000:]}")
    doc: dict[str, object] = json.loads(done.stdout)
    return wall, doc


def preflight_alone(reach: list[str]) -> float:
    hosts = read_hosts(Path(reach[reach.index("--hosts") + 1]))
    known = Path(reach[reach.index("--known-hosts") + 1])
    topology = on_hosts(grading_topology(read_submission(FORK), "fork", 9999), hosts)
    start = time.monotonic()
    problems = SshBackend.configured(known_hosts=known).host_problems(topology)
    took = time.monotonic() - start
    if problems:
        raise SystemExit("; ".join(problems))
    return took


def verdict(doc: dict[str, object]) -> str:
    return f"{doc['points']:g}/{doc['max_points']:g} points, {doc['verdict']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--user", default=None, help="who logs in (default: socketlab if made)")
    parser.add_argument("--netns", action="store_true", help="grade on netns too, to compare")
    args = parser.parse_args()
    user = args.user or default_user()
    with tempfile.TemporaryDirectory(prefix="bench-grade-ssh-") as tmp:
        base = Path(tmp)
        os.environ["SOCKET_LAB_STATE"] = str(base / "state")  # records of its own
        made: list[World] = []

        def maker(topology: Topology) -> World:
            made.append(make_world(topology, base, user=user))
            return made[-1]

        try:
            _, reach = machines(maker, base)
            check = preflight_alone(reach)
            wall, doc = timed_grade(base / "ssh", *reach)
        finally:
            for world in made:
                world.down()
        print(f"ssh (user {user}): lab grade {wall:.1f} s wall, {doc['seconds']} s in grade.json;")
        print(f"  the pre-flight alone (done twice: by lab grade, then at bring-up) {check:.2f} s")
        print(f"  {verdict(doc)}")
        if args.netns:
            wall, doc = timed_grade(base / "netns", "--backend", "netns")
            print(f"netns: lab grade {wall:.1f} s wall, {doc['seconds']} s in grade.json")
            print(f"  {verdict(doc)}")


if __name__ == "__main__":
    main()
