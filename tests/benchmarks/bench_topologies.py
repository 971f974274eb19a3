"""Benchmark: wall time of `lab run` phases per shipped topology and backend, and the
bring-up + teardown time of synthetic one-LAN topologies of growing size.

    python3 -m tests.benchmarks.bench_topologies [--backends netns,docker] [--repeat 3]

Prints medians over the repeats. Figures, not assertions: nothing here fails on speed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from lab.run.backends import backend_class
from lab.run.backends.base import new_run_id
from lab.run.runner import run_lab
from lab.spec.model import Interface, Network, Node, Topology
from lab.spec.topology import load_topology
from tests.labcli import ROOT

PHASES = ("up", "run", "collect", "down")


def one_lan(size: int) -> Topology:
    net = Network("lan", IPv4Network("10.77.128.0/20"))
    nodes = tuple(
        Node(f"n{i:03d}", (Interface("lan", IPv4Address(int(net.subnet[10]) + i)),))
        for i in range(size)
    )
    return Topology(name=f"lan{size}", networks=(net,), nodes=nodes)


def bench_topologies(backends: list[str], repeat: int) -> None:
    print(f"lab run, median of {repeat} (seconds, {os.cpu_count()} cores)")
    print(
        f"{'topology':10} {'backend':8} " + " ".join(f"{p:>8}" for p in PHASES) + f" {'total':>8}"
    )
    for name in ("default", "routed", "scale"):
        topo = load_topology(ROOT / "topologies" / f"{name}.yaml")
        for backend in backends:
            cls = backend_class(backend)
            if cls.available() is not None:
                print(f"{name:10} {backend:8} unavailable: {cls.available()}")
                continue
            samples: dict[str, list[float]] = {p: [] for p in (*PHASES, "total")}
            for _ in range(repeat):
                with tempfile.TemporaryDirectory() as tmp:
                    start = time.monotonic()
                    record = run_lab(topo, cls, Path(tmp) / "out")
                    samples["total"].append(time.monotonic() - start)
                for p in PHASES:
                    samples[p].append(record.timings.get(p, 0.0))
            row = " ".join(f"{statistics.median(samples[p]):8.2f}" for p in (*PHASES, "total"))
            print(f"{name:10} {backend:8} {row}", flush=True)


def bench_sizes(backends: list[str], sizes: list[int], repeat: int) -> None:
    print(f"\nup + down of one LAN, median of {repeat} (seconds)")
    print(f"{'nodes':>6} {'backend':8} {'up':>8} {'down':>8} {'up+down':>8}")
    for size in sizes:
        topo = one_lan(size)
        for backend in backends:
            cls = backend_class(backend)
            if cls.available() is not None:
                continue
            ups, downs = [], []
            for _ in range(repeat):
                b = cls(new_run_id())
                start = time.monotonic()
                try:
                    b.up(topo)
                    ups.append(time.monotonic() - start)
                finally:
                    mid = time.monotonic()
                    b.down()
                    downs.append(time.monotonic() - mid)
            up, down = statistics.median(ups), statistics.median(downs)
            print(f"{size:6} {backend:8} {up:8.2f} {down:8.2f} {up + down:8.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="netns")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="10,50,100")
    args = parser.parse_args()
    backends = args.backends.split(",")
    bench_topologies(backends, args.repeat)
    bench_sizes(backends, [int(s) for s in args.sizes.split(",")], args.repeat)


if __name__ == "__main__":
    main()
