"""What a server process holds, seen on its own node (standard library only)::

    python3 -m tests.hardening.probe PID [--settle-fds N] [--deadline S]

Prints one JSON object: ``fds`` (entries in /proc/PID/fd), ``rss_kb`` (VmRSS from
/proc/PID/status), ``children`` ({pid: ps STAT} of every process whose parent is PID, from
``ps --ppid``) and ``settled``. With ``--settle-fds N`` it polls until the process holds
at most N descriptors and has no child at all, or the deadline passes: connections close
asynchronously (a forked child exits, is reaped; a thread closes its socket) after the
client has gone, so one look right after a case would measure the closing, not a leak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass


@dataclass
class Holding:
    fds: int
    rss_kb: int
    children: dict[str, str]
    settled: bool = False


def look(pid: int) -> Holding:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    rss_kb = 0
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    ps = subprocess.run(
        ["ps", "-o", "pid=,stat=", "--ppid", str(pid)],
        capture_output=True,
        text=True,
        check=False,  # ps exits 1 when the process has no child
    )
    children = dict(line.split(None, 1) for line in ps.stdout.splitlines() if line.strip())
    return Holding(fds, rss_kb, {k: v.strip() for k, v in children.items()})


def settle(pid: int, max_fds: int, deadline: float) -> Holding:
    while True:
        now = look(pid)
        if now.fds <= max_fds and not now.children:
            now.settled = True
            return now
        if time.monotonic() >= deadline:
            return now
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.hardening.probe")
    parser.add_argument("pid", type=int)
    parser.add_argument("--settle-fds", type=int, help="wait until at most N fds and no child")
    parser.add_argument("--deadline", type=float, default=30.0, help="seconds to wait (30)")
    args = parser.parse_args(argv)
    if args.settle_fds is None:
        holding = look(args.pid)
    else:
        holding = settle(args.pid, args.settle_fds, time.monotonic() + args.deadline)
    print(json.dumps(asdict(holding)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
