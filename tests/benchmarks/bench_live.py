"""Benchmark: ``lab up`` and ``lab down`` of a live lab, wall-clock, per backend.

    python3 -m tests.benchmarks.bench_live [--backend netns,docker,ssh] [--repeat 5]
        [--topology lab/data/topologies/default.yaml]

ssh runs against sshd hosts made for it as the ssh tests make them (tests/ssh/hosts.py:
network namespaces with their own sshd, logged in to as ``socketlab`` where it exists).

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
from typing import Any

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


def _ssh_world(tmp: Path, topology: str) -> tuple[list[str], Any]:
    """sshd hosts for the topology, and ``lab up``'s arguments for them."""
    from lab.spec.topology import load_topology
    from tests.ssh.hosts import make_world
    from tests.ssh.test_ssh import ssh_topology

    world = make_world(load_topology(Path(topology)), tmp)
    topo = ssh_topology(world, ROOT / topology, tmp / "topology.yaml")
    known = world.known_hosts(tmp / "known_hosts")
    return [str(topo), "--known-hosts", str(known)], world


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
                extra, world = (
                    _ssh_world(Path(tmp), args.topology) if backend == "ssh" else ([], None)
                )
                try:
                    topo = extra.pop(0) if extra else args.topology
                    up = ["up", topo, "--backend", backend, "--out", out, *extra]
                    ups.append(timed(up, env))
                    downs.append(timed(["down"], env))
                finally:
                    if world is not None:
                        world.down()
        for what, values in (("up", ups), ("down", downs)):
            print(
                f"{backend:7} lab {what:5} median {statistics.median(values):5.2f} s  "
                f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
            )


if __name__ == "__main__":
    main()
