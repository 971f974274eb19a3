"""Benchmark: `lab run` phases of the default and routed topologies on the swarm backend,
on one engine and spread over two, on a two-engine swarm made for the purpose (the tests'
own: a second dockerd in a network namespace; removed afterwards), with the docker backend
alongside on the same machine for scale.

    python3 -m tests.benchmarks.bench_swarm [--repeat 3]

Needs root and a Docker engine not in a swarm. Prints medians and the two-engine to
one-engine ratio of each phase, measured in one run. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from lab.deploy.images import node_image
from lab.run.backends import backend_class
from lab.run.backends.base import Backend
from lab.run.backends.swarm import SwarmBackend, load_engines
from lab.run.backends.swarm.cluster import open_cluster
from lab.run.backends.swarm.images import ensure_image
from lab.run.runner import run_lab
from lab.spec.topology import load_topology
from tests.labcli import ROOT
from tests.swarm.twoengines import TwoEngines

PHASES = ("up", "run", "collect", "down")


def medians(cls: type[Backend], topology: str, repeat: int) -> dict[str, float]:
    topo = load_topology(ROOT / "topologies" / f"{topology}.yaml")
    samples: dict[str, list[float]] = {p: [] for p in (*PHASES, "total")}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.monotonic()
            record = run_lab(topo, cls, Path(tmp) / "out")
            samples["total"].append(time.monotonic() - start)
        for p in PHASES:
            samples[p].append(record.timings.get(p, 0.0))
    return {p: statistics.median(v) for p, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    swarm = TwoEngines()
    try:
        swarm.start()
        with tempfile.TemporaryDirectory() as tmp:
            both = swarm.engines_file(Path(tmp))
            one = Path(tmp) / "one.yaml"
            one.write_text(both.read_text().splitlines()[0] + "\n")
            setups = {
                "docker": backend_class("docker"),
                "swarm-1": SwarmBackend.configured(load_engines(one)),
                "swarm-2": SwarmBackend.configured(load_engines(both)),
            }
            start = time.monotonic()
            cluster = open_cluster(load_engines(both))
            image = node_image()
            assert image is not None, "run `lab images build`"
            sent = ensure_image(cluster, image)
            print(f"node image sent to {sent} in {time.monotonic() - start:.1f} s (vfs)")
            start = time.monotonic()
            again = ensure_image(cluster, image)
            print(f"image check when current: sent to {again} in {time.monotonic() - start:.2f} s")
            cluster.close()
            report(setups, args.repeat)
    finally:
        problems = swarm.stop()
        if problems:
            print("teardown problems:", problems)


def report(setups: dict[str, type[Backend]], repeat: int) -> None:
    print(f"lab run, median of {repeat} (seconds, {os.cpu_count()} cores)")
    print(f"{'topology':9} {'setup':8} " + " ".join(f"{p:>8}" for p in (*PHASES, "total")))
    for topology in ("default", "routed"):
        rows = {name: medians(cls, topology, repeat) for name, cls in setups.items()}
        for name, row in rows.items():
            cells = " ".join(f"{row[p]:8.2f}" for p in (*PHASES, "total"))
            print(f"{topology:9} {name:8} {cells}", flush=True)
        ratio = " ".join(
            f"{rows['swarm-2'][p] / rows['swarm-1'][p]:8.2f}" if rows["swarm-1"][p] else f"{'-':>8}"
            for p in (*PHASES, "total")
        )
        print(f"{topology:9} {'2/1':8} {ratio}", flush=True)


if __name__ == "__main__":
    main()
