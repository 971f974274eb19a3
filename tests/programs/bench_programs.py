"""Benchmark: how long N concurrent line clients take against each echo server.

Run: python3 -m tests.programs.bench_programs [N]   (prints one line per server)
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

from tests.programs.conftest import HOST, program

SERVERS = [
    ("fork_server",),
    ("fork_server", "--double-fork"),
    ("thread_server",),
    ("iterative_server",),
    ("dict_server",),
]


def bench(cmd: tuple[str, ...], count: int) -> str:
    proc = subprocess.Popen(
        [*program(cmd[0]), "--host", HOST, "--port", "0", "--backlog", "1024", *cmd[1:]],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        match = re.search(r":(\d+) pid=", proc.stderr.readline())
        assert match is not None
        client = [*program("client"), "--host", HOST, "--port", match.group(1), "--json"]
        client += ["--send", "hello", "--send", "world", "--count", str(count)]
        start = time.perf_counter()
        done = subprocess.run(client, capture_output=True, text=True, timeout=300)
        elapsed = time.perf_counter() - start
        ok = json.loads(done.stdout)["ok"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    name = " ".join(cmd)
    return f"{name:32} {count} clients: {ok} ok in {elapsed:.2f} s ({count / elapsed:.0f} conn/s)"


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for cmd in SERVERS:
        print(bench(cmd, count), flush=True)


if __name__ == "__main__":
    main()
