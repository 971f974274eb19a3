"""Benchmark: ``lab up`` and ``lab down`` of a live lab, wall-clock, per backend.

    python3 -m tests.benchmarks.bench_live [--backend netns,docker] [--repeat 5]
        [--topology lab/data/topologies/default.yaml]

Each round is ``lab up FILE --backend B`` (until it returns to the prompt: nodes, captures,
the ``before`` snapshot and every service listening) then ``lab down`` (services stopped,
``final`` snapshot, collection, summary.json and report.html, teardown), each a fresh CLI
process as a user runs it, with a registry of its own. Prints the median and the range of
each. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.labcli import ROOT


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "lab.cli", *argv],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    took = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"lab {' '.join(argv)}: exit {result.returncode}: {result.stderr}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="netns,docker")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--topology", default="lab/data/topologies/default.yaml")
    args = parser.parse_args()
    for backend in args.backend.split(","):
        ups: list[float] = []
        downs: list[float] = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
                env = {"SOCKET_LAB_STATE": str(Path(tmp) / "state")}
                out = str(Path(tmp) / "out")
                ups.append(timed(["up", args.topology, "--backend", backend, "--out", out], env))
                downs.append(timed(["down"], env))
        for what, values in (("up", ups), ("down", downs)):
            print(
                f"{backend:7} lab {what:5} median {statistics.median(values):5.2f} s  "
                f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
            )


if __name__ == "__main__":
    main()
