"""Benchmark: the lab's fork and thread servers, their C twins and bare Python servers of
the same design, side by side on loopback, driven by the lab's load generator.

    python3 -m tests.benchmarks.bench_servers [--repeat 3] [--duration 3]
        [--servers c-fork,bare-fork,lab-fork,c-thread,bare-thread,lab-thread]

Columns: messages/s with 50 and with 1,000 persistent clients, and connections/s with 50
clients connecting once per request (churn); medians of --repeat runs. Then the ratios:
each lab server against the bare Python server of its design (the issue's target is at
least 0.9x), and each C twin against it.  The C programs are built first, with the real
compiler, into a temporary folder.  Every run gets a fresh server on a fresh port, with a
soft descriptor limit of 4096 (1,000 clients need more than the usual 1024).  Figures, not
assertions; on a shared machine compare within one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.programs.c_build import PROGRAMS
from tests.programs.conftest import HOST

SERVER_NOFILE = 4096


@dataclass(frozen=True)
class Column:
    title: str
    mode: str
    clients: int
    figure: str  # the loadgen summary key shown


COLUMNS = [
    Column("@50 persistent msg/s", "persistent", 50, "messages_per_s"),
    Column("@1000 persistent msg/s", "persistent", 1000, "messages_per_s"),
    Column("churn @50 conn/s", "per-request", 50, "connections_per_s"),
]


def server_argvs(c_dir: Path) -> dict[str, Callable[[int], list[str]]]:
    py = sys.executable
    return {
        "c-fork": lambda port: [str(c_dir / "fork_server"), str(port), "--host", HOST],
        "bare-fork": lambda port: [py, "-m", "tests.benchmarks.bare_fork_server", str(port)],
        "lab-fork": lambda port: [
            py,
            "-m",
            "lab.programs.fork_server",
            "--host",
            HOST,
            "--port",
            str(port),
        ],
        "c-thread": lambda port: [str(c_dir / "thread_server"), str(port), "--host", HOST],
        "bare-thread": lambda port: [py, "-m", "tests.benchmarks.bare_thread_server", str(port)],
        "lab-thread": lambda port: [
            py,
            "-m",
            "lab.programs.thread_server",
            "--host",
            HOST,
            "--port",
            str(port),
        ],
    }


def build_c(out_dir: Path) -> None:
    for prog in PROGRAMS:
        if prog.name in ("fork_server", "thread_server"):
            subprocess.run(prog.argv(out_dir), check=True, timeout=300)


def _server_limits() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    soft = SERVER_NOFILE if hard == resource.RLIM_INFINITY else min(SERVER_NOFILE, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def run_once(argv: list[str], column: Column, duration: float) -> float | None:
    """One fresh server (port 0: the kernel picks), one loadgen run; the figure or None."""
    server = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_server_limits,
        start_new_session=True,  # so that stopping it also stops its children
    )
    try:
        assert server.stderr is not None
        match = re.search(r"^listening tcp [\d.]+:(\d+)", server.stderr.readline())
        if match is None:
            return None
        # The server's log is not read from here on: a pipe that nobody reads would fill
        # and block a server that logs every connection, so it goes to a reader thread.
        threading.Thread(target=server.stderr.read, daemon=True).start()
        done = subprocess.run(
            [sys.executable, "-m", "lab.programs.loadgen", "--host", HOST,
             "--port", match.group(1), "--mode", column.mode, "-c", str(column.clients),
             "-d", str(duration), "--json"],
            capture_output=True, text=True, timeout=duration + 180,
        )  # fmt: skip
        doc = json.loads(done.stdout.splitlines()[-1])
        value = doc.get(column.figure)
        return float(value) if value is not None else None
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(30)
        except ProcessLookupError:
            server.wait(30)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.1f}k" if value >= 10000 else f"{value / 1000:.2f}k"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument(
        "--servers", default="c-fork,bare-fork,lab-fork,c-thread,bare-thread,lab-thread"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-servers-") as tmp:
        c_dir = Path(tmp)
        build_c(c_dir)
        argvs = server_argvs(c_dir)
        names = args.servers.split(",")
        print(
            f"loopback, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
            f"medians of {args.repeat} x {args.duration:g} s; 32 B messages"
        )
        print(f"{'server':12}" + "".join(f"{c.title:>24}" for c in COLUMNS), flush=True)
        results: dict[str, list[float | None]] = {}
        for name in names:
            row: list[float | None] = []
            for column in COLUMNS:
                runs = [run_once(argvs[name](0), column, args.duration) for _ in range(args.repeat)]
                present = [r for r in runs if r is not None]
                row.append(statistics.median(present) if present else None)
            results[name] = row
            print(f"{name:12}" + "".join(f"{_fmt(v):>24}" for v in row), flush=True)
    print("\nratios against the bare Python server of the same design (target for lab: >= 0.9)")
    for design in ("fork", "thread"):
        bare = results.get(f"bare-{design}")
        for kind in ("lab", "c"):
            mine = results.get(f"{kind}-{design}")
            if bare is None or mine is None:
                continue
            ratios = [
                f"{m / b:.2f}x" if m is not None and b else "-"
                for m, b in zip(mine, bare, strict=True)
            ]
            print(f"{kind + '-' + design:12}" + "".join(f"{r:>24}" for r in ratios))


if __name__ == "__main__":
    main()
