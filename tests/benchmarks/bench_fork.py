"""Benchmark: what one fork() + _exit() + waitpid() costs, in C and in CPython, which bounds
the connections per second of any fork-per-connection server written in either.

    python3 -m tests.benchmarks.bench_fork [--count 2000] [--repeat 5]

Rows: a C program (built with cc into a temporary folder); a bare ``python3`` that has
imported only ``os``; the same with the bare fork server's imports (``signal``,
``socket``); and the same after importing the lab's fork server, whose parent
carries more modules, so more memory for fork() to share and for the child's exit to give
back. Each row is the median of --repeat loops of --count sequential forks, the child
exiting at once: milliseconds per fork and forks per second. Figures, not assertions;
run the rows close together on a shared machine and compare them with each other.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.labcli import ROOT

C_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    int count = atoi(argv[1]);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < count; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        waitpid(pid, NULL, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.9f\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
    return 0;
}
"""

PY_LOOP = """
import os, sys, time
{imports}
count = int(sys.argv[1])
began = time.perf_counter()
for _ in range(count):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print(f"{{time.perf_counter() - began:.9f}}")
"""


def _seconds(argv: list[str]) -> float:
    done = subprocess.run(
        argv, capture_output=True, text=True, check=True, timeout=600, cwd=ROOT
    )  # the repository's root: where -S -c finds lab without the site module
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fork-") as tmp:
        source = Path(tmp) / "fork_loop.c"
        source.write_text(C_SOURCE)
        binary = Path(tmp) / "fork_loop"
        subprocess.run(["cc", "-O2", "-o", str(binary), str(source)], check=True, timeout=300)
        # -S: as the lab runs its programs (Session.program), without the site module, whose
        # packages would add their memory to every Python row alike.
        rows = {
            "C": [str(binary), str(args.count)],
            "python3, os only": [
                sys.executable,
                "-S",
                "-c",
                PY_LOOP.format(imports=""),
                str(args.count),
            ],
            "python3 + bare server's": [
                sys.executable,
                "-S",
                "-c",
                PY_LOOP.format(imports="import signal, socket"),
                str(args.count),
            ],
            "python3 + lab fork_server": [
                sys.executable,
                "-S",
                "-c",
                PY_LOOP.format(imports="import lab.programs.fork_server"),
                str(args.count),
            ],
        }
        times: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(args.repeat):  # interleaved, like bench_servers
            for name, argv in rows.items():
                times[name].append(_seconds(argv) / args.count)
    print(f"fork() + _exit() + waitpid(), {args.count} in a row, median of {args.repeat}")
    for name, runs in times.items():
        per = statistics.median(runs)
        print(f"{name:28}{per * 1000:8.3f} ms{1 / per:10.0f} /s")


if __name__ == "__main__":
    main()
