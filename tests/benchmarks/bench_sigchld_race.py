"""How often the spot-the-bug race shows: run ``lab experiment bug-sigchld-race`` N times
(root, netns) and count the runs whose buggy fork server left a zombie, and the correct
server's (which must be 0). Prints the figures and the load average; not a test.

    python3 -m tests.benchmarks.bench_sigchld_race --runs 100
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def one_run(out: Path) -> tuple[bool, bool] | str:
    """(the buggy server left a zombie, the correct one did) in one run, or why the run
    failed (e.g. fork() failing with EAGAIN when other work holds the run user's process
    limit: such a run says nothing about the race, and is counted apart)."""
    argv = [sys.executable, "-m", "lab.cli", "experiment", "bug-sigchld-race"]
    argv += ["--backend", "netns", "--out", str(out), "--json", "--quiet"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        return done.stderr.strip().splitlines()[-1][:200] if done.stderr.strip() else "failed"
    shown = {}
    for sc in json.loads(done.stdout)["scenarios"]:
        reaped = next(c for c in sc["checks"] if c["name"].startswith("children reaped"))
        shown[sc["name"]] = "race was lost" in reaped["detail"] or not reaped["passed"]
    return shown["buggy"], shown["correct"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    buggy = correct = 0
    failed: list[str] = []
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            got = one_run(Path(tmp) / str(i))
            if isinstance(got, str):
                failed.append(got)
            else:
                buggy, correct = buggy + got[0], correct + got[1]
            load.append(os.getloadavg()[0])
    judged = args.runs - len(failed)
    print(
        f"runs judged {judged} of {args.runs}: a zombie left by the buggy server in {buggy}, "
        f"by the correct one in {correct}; load average {min(load):.1f} to {max(load):.1f}"
    )
    if failed:
        print(f"{len(failed)} runs failed and are not counted; the first: {failed[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
